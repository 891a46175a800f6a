"""Serving at 10,000 papers: `digest serve` (uvicorn, a subprocess) under a fixed number
of requests from a few concurrent keep-alive clients, on a state with one issue of all
the papers. Each figure is printed next to its baseline from the same run and server:

- /feed.xml gzipped (the .gz beside it) against /feed.xml plain: at least half the rate;
- /?q= search against / (the index page, a static file): at least a fifth of the rate,
  twice: a rotation of 12 queries asked again and again (after the first round, the
  server's results cache: web/search.py), and as many distinct queries (words and pairs
  of words of the sample titles) as requests, each one a full-text search and a page,
  measured in ROUNDS turns with the index page (its rate printed again: the baseline);
- the search's SQL alone (state/archive.py `find`, in process, as the server runs it)
  against the LIKE scan of every title and abstract it replaced, over the 12 queries; and
  its median and mean over the distinct queries.

No request may fail. The exit status says whether the two bars were met.

    python tests/bench/bench_serve.py [PAPERS] [--database-url URL] [--keep FOLDER]

(default: 10,000 papers on SQLite; --keep makes the state in FOLDER once and reuses it)
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CLIENTS = 4  # concurrent keep-alive connections
REQUESTS = 2000  # per measured path (searches: a fifth of that)
ROUNDS = 4  # the index page and the new queries measured in turn, this many times each
QUERIES = [
    "language", "model", "diffusion", "video generation", "reinforcement learning",
    "transformer", "benchmark", "efficient", "graph neural", "agents", "reason", "3d",
]  # fmt: skip


def distinct_queries(n: int) -> list[str]:
    """``n`` different queries: single words and pairs of words of the sample titles."""
    import random
    import re

    from tests.support.papers import samples

    words = sorted({w.lower() for p in samples() for w in re.findall(r"[A-Za-z]{4,}", p.title)})
    rng = random.Random(1)
    queries: set[str] = set(words[: n // 4])
    while len(queries) < n:
        queries.add(" ".join(rng.sample(words, 2)))
    return sorted(queries, key=lambda q: rng.random())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def digest_cli(folder: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "digest.cli", "--config", str(folder / "digest.toml"), *args]


def publish(folder: Path, n: int, database_url: str) -> float:
    """The state: ``n`` papers, published once in one issue; returns the seconds."""
    from tests.bench.bench_huge import setup

    made = setup(folder, n, limit=n)
    if database_url:
        toml = (made / "digest.toml").read_text()
        toml = toml.replace("[digest]\n", f'[digest]\ndatabase_url = "{database_url}"\n', 1)
        (made / "digest.toml").write_text(toml)
    t0 = time.perf_counter()
    subprocess.run(digest_cli(made, "send"), check=True, env=env(), capture_output=True)
    return time.perf_counter() - t0


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))


def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # only a hang reaches it
    while time.monotonic() < deadline:
        assert proc.poll() is None, "digest serve exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("digest serve did not listen")


def hammer(port: int, paths: list[str], headers: dict[str, str], total: int) -> tuple[float, int]:
    """``total`` GETs over CLIENTS keep-alive connections; (requests per second, errors)."""
    errors = [0]
    counter = iter(range(total))
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            try:
                conn.request("GET", paths[i % len(paths)], headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[0] += 1
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - t0), errors[0]


def alternate(port: int, fresh: list[str]) -> tuple[float, float, int]:
    """The index page and the new queries, ROUNDS times each in turn (the machine's load
    drifts: both rates see the same); (index rate, search rate, errors)."""
    took = {"index": 0.0, "new": 0.0}
    errors = 0
    share = len(fresh) // ROUNDS
    for r in range(ROUNDS):
        for name, paths, n in (("index", ["/"], REQUESTS // ROUNDS),
                               ("new", fresh[r * share : (r + 1) * share], share)):  # fmt: skip
            rate, failed = hammer(port, paths, {}, n)
            took[name] += n / rate
            errors += failed
    return REQUESTS / took["index"], share * ROUNDS / took["new"], errors


def sql_times(folder: Path) -> tuple[float, float, int, list[float]]:
    """Median ms per query of the index search and of the old LIKE scan; most hits; the
    ms of the index search of each distinct query."""
    from sqlalchemy import func, select

    from digest.app import make_app
    from digest.config import load_settings
    from digest.state.archive import find
    from digest.state.models import Digest, DigestItem, Paper

    app = make_app(load_settings(folder / "digest.toml"))

    def like_scan(session: object, query: str) -> list[object]:
        conditions = [
            func.lower(Paper.title).like(f"%{w}%") | func.lower(Paper.abstract).like(f"%{w}%")
            for w in query.lower().split()
        ]
        q = (
            select(Paper.title, Paper.abstract, Digest.issue, DigestItem.position)
            .join(DigestItem, DigestItem.paper_id == Paper.id)
            .join(Digest, Digest.id == DigestItem.digest_id)
            .where(*conditions)
            .order_by(Digest.issue.desc(), DigestItem.position)
            .limit(50)
        )
        return list(session.execute(q))  # type: ignore[attr-defined]

    index_ms, scan_ms, most = [], [], 0
    with app.session() as session:
        for _ in range(3):
            for query in QUERIES:
                t0 = time.perf_counter()
                most = max(most, len(find(app.database, query)))
                index_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                like_scan(session, query)
                scan_ms.append((time.perf_counter() - t0) * 1000)
    fresh_ms = []
    for query in distinct_queries(REQUESTS // 5):
        t0 = time.perf_counter()
        find(app.database, query)
        fresh_ms.append((time.perf_counter() - t0) * 1000)
    app.database.engine.dispose()
    return statistics.median(index_ms), statistics.median(scan_ms), most, fresh_ms


def bench(n: int, database_url: str = "", keep: Path | None = None) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        root = keep or Path(tmp)
        folder = root / f"n{n}-{n}"
        took = 0.0 if folder.exists() else publish(root, n, database_url)
        port = free_port()
        server = subprocess.Popen(
            digest_cli(folder, "serve", "--host", "127.0.0.1", "--port", str(port)), env=env()
        )
        try:
            wait_listening(port, server)
            gz = {"Accept-Encoding": "gzip"}
            hammer(port, ["/feed.xml", "/", "/?q=model"], gz, 100)  # warm the caches
            plain, e1 = hammer(port, ["/feed.xml"], {}, REQUESTS)
            zipped, e2 = hammer(port, ["/feed.xml"], gz, REQUESTS)
            index, e3 = hammer(port, ["/"], {}, REQUESTS)
            searches = [f"/?q={q.replace(' ', '+')}" for q in QUERIES]
            found, e4 = hammer(port, searches, {}, REQUESTS // 5)
            fresh = [f"/?q={q.replace(' ', '+')}" for q in distinct_queries(REQUESTS // 5)]
            index_again, new, e5 = alternate(port, fresh)
        finally:
            server.terminate()
            server.wait(60)
        index_ms, scan_ms, most, fresh_ms = sql_times(folder)
        feed_kb = (folder / "state" / "public" / "feed.xml").stat().st_size / 1024
    errors = e1 + e2 + e3 + e4 + e5
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"\n{n:,} papers in one issue on {backend} (published in {took:.0f} s); "
          f"{CLIENTS} keep-alive clients")  # fmt: skip
    print(f"/feed.xml ({feed_kb:.0f} KB) plain     {plain:7.0f} requests/s  (baseline)")
    print(f"/feed.xml gzipped (.gz)      {zipped:7.0f} requests/s  = {zipped / plain:.2f}x plain")
    print(f"/ (the index page)           {index:7.0f} requests/s  (baseline)")
    print(f"/?q= search, 12 asked again  {found:7.0f} requests/s  = {found / index:.2f}x index")
    print(f"/ again, in turn with these  {index_again:7.0f} requests/s  (baseline)")
    print(f"/?q= search, each one new    {new:7.0f} requests/s  = {new / index_again:.2f}x index")
    print(
        f"search SQL, median of {len(QUERIES)} queries: full-text index {index_ms:.2f} ms, "
        f"LIKE scan (before) {scan_ms:.2f} ms; up to {most} hits shown"
    )
    print(
        f"search SQL, {len(fresh_ms)} distinct queries: "
        f"median {statistics.median(fresh_ms):.2f} ms, mean {statistics.mean(fresh_ms):.2f} ms"
    )
    print(f"errors: {errors}")
    met = errors == 0 and zipped >= plain / 2 and found >= index / 5
    print("bars (gzip >= 1/2 plain, search >= 1/5 index, no errors):", "met" if met else "MISSED")
    print("  with every query new:", "met" if new >= index_again / 5 else "MISSED")
    return met


def test_serve() -> None:
    assert bench(10_000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("papers", nargs="?", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--keep", type=Path, help="make the state here, or reuse it")
    args = parser.parse_args()
    sys.exit(0 if bench(args.papers, args.database_url, args.keep) else 1)
