"""Scale figures, each next to a baseline measured in the same run:

1. `subscribers import` of 100,000 rows vs a raw sqlite3 executemany of the same rows;
2. messages/s for 1, 2 and 4 `digest worker` processes on PostgreSQL through the
   private Postfix (.ci/postfix.sh) vs raw smtplib over one connection to that Postfix;
3. peak RSS of `digest send` (publish + deliver to an SMTP sink) at 1k, 10k and 100k
   subscribers, and of a `digest worker` that only delivers;
4. `digest send` of a new 100-paper dump with 10k, 100k and 1M papers of history
   (seeded in bulk), SQLite;
5. storing a parsed 50,000-paper dump (papers and sightings) vs a raw sqlite3 executemany
   of the same rows.

    DIGEST_TEST_DATABASE_URL=$(bash .ci/postgres.sh) DIGEST_TEST_POSTFIX="$(bash .ci/postfix.sh)" \\
      python tests/bench/bench_scale.py
    make bench   (runs every bench_*.py)

BENCH_SCALE_QUICK=1 shrinks every size tenfold (a smoke run).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import secrets
import smtplib
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from digest.app import (  # noqa: E402
    make_app,
    publishing,
    subscribing,
)
from digest.config import load_settings  # noqa: E402
from digest.state import db  # noqa: E402
from digest.state.models import Delivery  # noqa: E402
from tests.bench.bench_delivery import Sink  # noqa: E402
from tests.support.dumps import write_dump  # noqa: E402
from tests.support.papers import generate  # noqa: E402

QUICK = bool(os.environ.get("BENCH_SCALE_QUICK"))
SCALE = 10 if QUICK else 1
PG = os.environ.get("DIGEST_TEST_DATABASE_URL", "")
POSTFIX = os.environ.get("DIGEST_TEST_POSTFIX", "")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
WORDS = [
    "model",
    "data",
    "learning",
    "sparse",
    "router",
    "expert",
    "audio",
    "music",
    "vision",
    "token",
    "graph",
]


PAPERS = [(f"Paper {i}", "An abstract of a paper. " * 30) for i in range(20)]


def abstract(rng: random.Random, n: int = 40) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def config(folder: Path, url: str, port: int, **email: object) -> Path:
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    email = {"transport": "smtp", "connections": 2} | email
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in email.items())
    path = folder / "digest.toml"
    path.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\ndatabase_url = "{url}"\n'
        f'[email]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        f"{extra}[schedule]\npoll_seconds = 0.2\n"
    )
    return path


def run_cli(cfg: Path, *args: str) -> tuple[float, int]:
    """Runs `digest -c cfg ARGS` in a child; (seconds, peak RSS in MB). The peak comes
    from GNU time (Debian's `time` package): a forked child's own rusage would count the
    parent's pages it had before exec."""
    timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    proc = subprocess.run(
        [*timer, sys.executable, "-m", "digest", "-c", str(cfg), *args],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    seconds = time.perf_counter() - started
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    peak = int(err.strip().splitlines()[-1]) // 1024 if timer else -1
    return seconds, peak


def seed_subscribers(url: str, n: int, domain: str = "example.org") -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    stamp = now.replace(tzinfo=None).isoformat(" ") if url.startswith("sqlite") else now
    rows = [
        (
            f"r{i}@{domain}",
            f"r{i}@{domain}",
            "",
            "active",
            "[]",
            secrets.token_urlsafe(32),
            0,
            stamp,
        )
        for i in range(n)
    ]
    mark = "?" if url.startswith("sqlite") else "%s"
    sql = (
        "INSERT INTO subscribers (key, address, name, status, themes, token, bounce_count, "
        f"created_at) VALUES ({', '.join([mark] * 8)})"
    )
    with engine.begin() as conn:
        for i in range(0, n, 10_000):
            conn.exec_driver_sql(sql, rows[i : i + 10_000])
    engine.dispose()


# --------------------------------------------------------------------------- 1. import


def bench_import(n: int = 100_000) -> None:
    csv_text = "email,name\n" + "".join(f"user{i}@example{i % 50}.org,User {i}\n" for i in range(n))
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{tmp}/a.db")
        db.upgrade(engine)
        book = subscribing.book(make_app_for(engine, Path(tmp)))
        started = time.perf_counter()
        report = book.import_csv(io.StringIO(csv_text))
        ours = time.perf_counter() - started
        assert report.added == n
        engine.dispose()
        raw_engine = db.make_engine(f"sqlite:///{tmp}/b.db")
        db.upgrade(raw_engine)
        raw_engine.dispose()
        conn = sqlite3.connect(f"{tmp}/b.db")
        # the same rows as digest stores: two tokens each (the unsubscribe link's and
        # the private feed's, each under a unique index)
        rows = [
            (f"user{i}@example{i % 50}.org",) * 2
            + (f"User {i}", "active", "[]", secrets.token_urlsafe(32), 0, "2026-01-01 00:00:00")
            + (secrets.token_urlsafe(32),)
            for i in range(n)
        ]
        started = time.perf_counter()
        conn.executemany(
            "INSERT INTO subscribers (key, address, name, status, themes, token, bounce_count,"
            " created_at, feed_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.commit()
        raw = time.perf_counter() - started
        conn.close()
    print(f"subscribers import, {n:,} rows:       {ours:6.2f} s")
    print(f"raw sqlite3 executemany, same rows:  {raw:6.2f} s   (ratio {ours / raw:.1f}x)")


def make_app_for(engine, folder: Path):
    cfg = folder / "digest.toml"
    cfg.write_text('[digest]\nstate_dir = "state"\n')
    return make_app(load_settings(str(cfg)), database=db.Database(engine, migrated=True))


# --------------------------------------------------------------------------- 2. workers


def bench_workers(n: int = 3000) -> None:
    if not (PG and POSTFIX):
        print("workers through Postfix: skipped (needs DIGEST_TEST_DATABASE_URL and _POSTFIX)")
        return
    from tests.support.postgres import new_pg_database

    host_port = POSTFIX.split()[0]
    port = int(host_port.rsplit(":", 1)[1])
    rates, cpu = {}, {}
    for workers in (1, 2, 4):
        with tempfile.TemporaryDirectory() as tmp, new_pg_database() as url:
            folder = Path(tmp)
            cfg = config(folder, url, port, claim_batch=50, lease_seconds=30.0)
            write_dump(
                folder / "dumps" / "0.txt",
                [(f"Paper {i}", "An abstract. " * 30) for i in range(20)],
            )
            app = make_app(load_settings(str(cfg)))
            app.database.engine  # noqa: B018  (creates the schema)
            seed_subscribers(url, n, f"b{uuid.uuid4().hex[:8]}.example.org")
            publishing.publish(app)
            busy_before, began = busy_seconds(), time.perf_counter()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-m", "digest", "-c", str(cfg), "worker", "--drain"],
                    cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                )
                for _ in range(workers)
            ]  # fmt: skip
            own = 0.0  # the workers' CPU seconds
            for p in procs:
                _, status, usage = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                assert p.returncode == 0
                own += usage.ru_utime + usage.ru_stime
            wall, busy = time.perf_counter() - began, busy_seconds() - busy_before
            cpu[workers] = (busy / wall, own / wall)
            with app.session() as s:
                first, last, sent = s.execute(
                    select(
                        func.min(Delivery.sent_at), func.max(Delivery.sent_at), func.count()
                    ).where(Delivery.status == "sent")
                ).one()
                data = s.scalar(text("SELECT length(html) FROM digest_variants LIMIT 1"))
            assert sent == n
            assert first is not None and last is not None
            rates[workers] = n / max((last - first).total_seconds(), 1e-6)
            app.database.engine.dispose()
    message = (
        b"From: b@example.org\r\nTo: x@example.org\r\nSubject: bench\r\n\r\n"
        + b"x" * 70 + b"\r\n"
    ) * max(1, int(data or 10_000) // 72)  # fmt: skip
    raw = {k: raw_smtplib(port, message, n, k) for k in (1, 2, 4)}
    for workers, rate in rates.items():
        print(
            f"digest worker x{workers} (2 conns each), PG -> Postfix: {rate:7,.0f} msg/s"
            f"   (cores busy: machine {cpu[workers][0]:.2f}, the workers {cpu[workers][1]:.2f})"
        )
    for k, rate in raw.items():
        print(f"raw smtplib, {k} connection(s), 1 per process -> same Postfix: {rate:7,.0f} msg/s")


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat: all but idle and
    iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _raw_client(port: int, message: bytes, n: int, start: Any) -> None:
    conn = smtplib.SMTP("127.0.0.1", port)
    domain = f"raw{uuid.uuid4().hex[:8]}.example.org"
    start.wait()
    for i in range(n):
        conn.sendmail("b@example.org", [f"r{i}@{domain}"], message)
    conn.quit()


def raw_smtplib(port: int, message: bytes, n: int, clients: int) -> float:
    """msg/s of ``clients`` processes, each a bare smtplib loop over one connection."""
    start = multiprocessing.Barrier(clients + 1)
    procs = [
        multiprocessing.Process(target=_raw_client, args=(port, message, n // clients, start))
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    start.wait()
    began = time.perf_counter()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    return (n // clients) * clients / (time.perf_counter() - began)


# --------------------------------------------------------------------------- 3. memory


def bench_memory(sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> None:
    sink = Sink()
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                url = f"sqlite:///{folder / 'state' / 'digest.db'}"
                cfg = config(folder, url, sink.port, connections=4)
                write_dump(folder / "dumps" / "0.txt", PAPERS)
                make_app(load_settings(str(cfg))).database.ready().engine.dispose()
                seed_subscribers(url, n)
                seconds, rss = run_cli(cfg, "send")
                write_dump(folder / "dumps" / "1.txt", [(f"Second {t}", a) for t, a in PAPERS])
                app = make_app(load_settings(str(cfg)))
                publishing.publish(app)
                app.database.engine.dispose()
                _, worker_rss = run_cli(cfg, "worker", "--drain")
            print(
                f"{n:>7,} subscribers: digest send peak RSS {rss:4d} MB ({seconds:5.1f} s); "
                f"worker only {worker_rss:4d} MB"
            )
    finally:
        sink.stop()


# --------------------------------------------------------------------------- 4. history


def seed_history(path: Path, papers: int) -> None:
    """`papers` papers already published, 100 per digest and per dump, in bulk."""
    rng = random.Random(7)
    conn = sqlite3.connect(path)
    stamp = "2026-01-01 00:00:00"
    per = 100
    n_digests = papers // per
    conn.executemany(
        "INSERT INTO dump_files (id, path, content_hash, size, status, warnings, paper_count,"
        " new_papers, ingested_at) VALUES (?, ?, ?, 1, 'ingested', '[]', ?, ?, ?)",
        [(d + 1, f"/gone/{d}.txt", f"{d:064x}", per, per, stamp) for d in range(n_digests)],
    )
    conn.executemany(
        "INSERT INTO digests (id, issue, subject, html, web_html, paper_count, themes,"
        " status, published_at) VALUES (?, ?, ?, '<p>x</p>', '<p>x</p>', ?, '[\"Area\"]',"
        " 'published', ?)",
        [(d + 1, d + 1, f"Issue {d + 1}", per, stamp) for d in range(n_digests)],
    )
    for start in range(0, papers, 50_000):
        ids = range(start + 1, min(papers, start + 50_000) + 1)
        conn.executemany(
            "INSERT INTO papers (id, key, title, abstract, links, first_seen_at, first_dump_id,"
            " published_in) VALUES (?, ?, ?, ?, '[]', ?, ?, ?)",
            [
                (i, f"old paper {i}", f"Old paper {i}", abstract(rng, 12), stamp,
                 (i - 1) // per + 1, (i - 1) // per + 1)
                for i in ids
            ],
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO sightings (paper_id, dump_id, position) VALUES (?, ?, ?)",
            [(i, (i - 1) // per + 1, (i - 1) % per) for i in ids],
        )
        conn.executemany(
            "INSERT INTO digest_items (digest_id, paper_id, section, section_slug, position)"
            " VALUES (?, ?, ?, ?, ?)",
            [((i - 1) // per + 1, i, f"Area {i % 20}", f"area-{i % 20}", (i - 1) % per)
             for i in ids],
        )  # fmt: skip
    conn.commit()
    conn.close()


def bench_history(sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)) -> None:
    times = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url = f"sqlite:///{folder / 'state' / 'digest.db'}"
            cfg = config(folder, url, 25, transport="maildir")
            make_app(load_settings(str(cfg))).database.ready().engine.dispose()
            seed_history(folder / "state" / "digest.db", n)
            for k in range(2):  # the first send writes the missing archive pages: warm-up
                papers = [
                    (f"{p.title} [{k}]", p.abstract) for p in generate(100, seed=n + k)
                ]  # realistic papers: the sectioning sees text like the real dumps
                write_dump(folder / "dumps" / f"new{k}.txt", papers)
                os.utime(folder / "dumps" / f"new{k}.txt", (time.time() - 60, time.time() - 60))
                seconds, _ = run_cli(cfg, "send")
            times[n] = seconds
            print(f"digest send, new 100-paper dump, {n:>9,} papers of history: {seconds:5.2f} s")
    first, last = times[sizes[0]], times[sizes[-1]]
    print(f"ratio {sizes[-1]:,} / {sizes[0]:,}: {last / first:.2f}x")


# --------------------------------------------------------------------------- 5. storing


def bench_store(n: int = 50_000) -> None:
    from digest.ingest.keys import paper_key
    from digest.ingest.parse import parse_bytes
    from digest.state import store

    papers = [(f"{p.title} ({i})", p.abstract) for i, p in enumerate(generate(n, seed=5))]
    with tempfile.TemporaryDirectory() as tmp:
        dump = write_dump(Path(tmp) / "big.txt", papers)
        listing = parse_bytes(dump.read_bytes(), name=str(dump), mtime=datetime.now(UTC))
        assert len(listing.papers) == n
        best: dict[str, float] = {}
        for rep in range(3):
            engine = db.make_engine(f"sqlite:///{tmp}/a{rep}.db")
            db.upgrade(engine)
            app = make_app_for(engine, Path(tmp))
            started = time.perf_counter()
            with app.session() as session:
                outcome = store.record_listing(session, listing, size=1)
                session.commit()
            best["ours"] = min(best.get("ours", 1e9), time.perf_counter() - started)
            assert outcome.new_papers == n
            engine.dispose()
            raw_engine = db.make_engine(f"sqlite:///{tmp}/b{rep}.db")
            db.upgrade(raw_engine)
            raw_engine.dispose()
            keys = [paper_key(p.title) for p in listing.papers]  # computed before the clock
            links = [json.dumps([{"url": x.url, "kind": x.kind} for x in p.links])
                     for p in listing.papers]  # fmt: skip
            rows = [
                (k, p.title, p.abstract, link, "2026-01-01 00:00:00", 1)
                for k, p, link in zip(keys, listing.papers, links, strict=True)
            ]
            conn = sqlite3.connect(f"{tmp}/b{rep}.db")
            started = time.perf_counter()
            conn.execute(
                "INSERT INTO dump_files (id, path, content_hash, size, status, warnings,"
                " paper_count, new_papers, ingested_at) VALUES"
                " (1, 'big.txt', 'x', 1, 'ingested', '[]', ?, ?, '2026-01-01 00:00:00')",
                (n, n),
            )
            conn.executemany(
                "INSERT INTO papers (key, title, abstract, links, first_seen_at, first_dump_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany(
                "INSERT INTO sightings (paper_id, dump_id, position) VALUES (?, 1, ?)",
                [(i + 1, i) for i in range(n)],
            )
            conn.commit()
            best["raw"] = min(best.get("raw", 1e9), time.perf_counter() - started)
            conn.close()
    ours, raw = best["ours"], best["raw"]
    print(f"storing a parsed {n:,}-paper dump:   {ours:6.2f} s")
    print(f"raw sqlite3 executemany, same rows:  {raw:6.2f} s   (digest at {raw / ours:.2f}x raw)")


def test_scale() -> None:
    bench_import(100_000 // SCALE)
    bench_workers(3000 // SCALE)
    bench_memory(tuple(n // SCALE for n in (1_000, 10_000, 100_000)))
    bench_history(tuple(n // SCALE for n in (10_000, 100_000, 1_000_000)))
    bench_store(50_000 // SCALE)


if __name__ == "__main__":
    test_scale()
