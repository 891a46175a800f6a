"""One digest (the 176-paper sample) to 10,000 subscribers through a local SMTP sink.

Prints messages per second for `deliver_pending` (claim, build, send, mark sent: one
row per subscriber) with 1, 2, 4 and 8 connections, next to a baseline measured in the
same run: raw smtplib sending the same pre-built messages over one reused connection.
Also times building the 10,000 personalised messages alone, and prints a worker's CPU a
message (this process's, every thread, plus, on PostgreSQL with DIGEST_TEST_DATABASE_URL,
the CPU of the server processes serving its database, read from /proc) next to raw
smtplib's CPU a message over one connection to the same sink, in the same run.

    python tests/bench/bench_delivery.py [subscribers]
    pytest tests/bench -o python_files='bench_*.py' -s -k delivery

The sink runs in its own process (so it does not share the client's GIL) and reads
each message's data in bulk, so the figures measure the sending side.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import multiprocessing
import os
import shutil
import smtplib
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select, text, update  # noqa: E402

from digest.app import App, delivering, ingesting, make_app, publishing, subscribing  # noqa: E402
from digest.config import DigestSection, EmailSection, Settings  # noqa: E402
from digest.mail import outbox  # noqa: E402
from digest.mail.message import MessageTemplate  # noqa: E402
from digest.state.models import Delivery, Subscriber  # noqa: E402

SAMPLES = ROOT / "examples" / "dumps"
SUBSCRIBERS = 10_000
PG = os.environ.get("DIGEST_TEST_DATABASE_URL", "")


# --------------------------------------------------------------------------- the sink


async def _session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count) -> None:
    writer.write(b"220 sink ESMTP\r\n")
    while line := await reader.readline():
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n")
        elif verb == b"DATA":
            writer.write(b"354 go ahead\r\n")
            await writer.drain()
            await reader.readuntil(b"\r\n.\r\n")
            with count.get_lock():
                count.value += 1
            writer.write(b"250 2.0.0 queued\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:  # MAIL, RCPT, RSET, NOOP
            writer.write(b"250 OK\r\n")
        await writer.drain()
    writer.close()


def _serve(port: int, count, ready) -> None:
    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _session(r, w, count), "127.0.0.1", port, limit=2**24
        )
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Sink:
    """An SMTP sink in a child process, counting the messages it accepted."""

    def __init__(self) -> None:
        from tests.support.net import free_port

        self.port = free_port()
        self.count = multiprocessing.Value("l", 0)
        ready = multiprocessing.Event()
        self.proc = multiprocessing.Process(
            target=_serve, args=(self.port, self.count, ready), daemon=True
        )
        self.proc.start()
        ready.wait(10)

    @property
    def received(self) -> int:
        return int(self.count.value)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join()


# --------------------------------------------------------------------------- set-up


def published_app(folder: Path, port: int, subscribers: int, url: str = "") -> App:
    """The sample digest published to `subscribers` subscribers; nothing sent yet (in
    SQLite, or in the database at `url`)."""
    shutil.copytree(SAMPLES, folder / "dumps")
    settings = Settings(
        digest=DigestSection(dumps_dir="dumps", state_dir="state", database_url=url),
        email=EmailSection(transport="smtp", smtp_host="127.0.0.1", smtp_port=port),
        base_dir=folder,
        source="bench",
    )
    app = make_app(settings)
    rows = "".join(f"reader{i}@example.org,Reader {i},,\n" for i in range(subscribers))
    subscribing.book(app).import_csv(io.StringIO("email,name,themes,status\n" + rows))
    t0 = time.perf_counter()
    publishing.publish(app)
    print(
        f"publish (render variants, {subscribers} delivery rows): {time.perf_counter() - t0:.2f} s"
    )
    return app


def built_messages(app: App) -> tuple[list[bytes], float]:
    """Every subscriber's message, built as delivery builds them, and the time it took."""
    with app.session() as s:
        jobs = s.execute(
            select(Delivery.variant_id, Subscriber.address, Delivery.message_id)
            .add_columns(Subscriber.token, Subscriber.name)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.status == "pending")
        ).all()
        letters = outbox.letters(s, {j.variant_id for j in jobs})
    mailing = app.mailing()
    t0 = time.perf_counter()
    templates = {
        vid: MessageTemplate(letter, mailing.envelope, when, mailing.signer)
        for vid, (letter, when) in letters.items()
    }
    messages = [
        templates[j.variant_id].render(j.address, j.message_id, j.token, j.name) for j in jobs
    ]
    return messages, time.perf_counter() - t0


def baseline(port: int, messages: list[bytes], n: int) -> float:
    """Raw smtplib, one reused connection, the pre-built messages; messages/second."""
    conn = smtplib.SMTP("127.0.0.1", port)
    t0 = time.perf_counter()
    for i in range(n):
        conn.sendmail("digest@localhost", [f"reader{i}@example.org"], messages[i % len(messages)])
    elapsed = time.perf_counter() - t0
    conn.quit()
    return n / elapsed


def ours(app: App, connections: int, n: int) -> float:
    with app.session() as s:
        s.execute(update(Delivery).values(status="pending"))
        s.commit()
    email = replace(app.settings.email, connections=connections)
    app.settings = replace(app.settings, email=email)
    t0 = time.perf_counter()
    report = delivering.deliver_pending(app)
    elapsed = time.perf_counter() - t0
    assert report.sent == n, report
    return n / elapsed


# --------------------------------------------------------------------------- CPU a message


def backends(app: App) -> list[int]:
    """The PostgreSQL server processes serving this app's database (its pool's
    connections, and the one asking)."""
    with app.database.engine.connect() as conn:
        found = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return [int(pid) for (pid,) in found]


def cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) each process spent so far, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def raw_cpu(port: int, messages: list[bytes], n: int) -> float:
    """CPU ms a message of raw smtplib over one reused connection (this process)."""
    conn = smtplib.SMTP("127.0.0.1", port)
    t0 = time.process_time()
    for i in range(n):
        conn.sendmail("digest@localhost", [f"reader{i}@example.org"], messages[i % len(messages)])
    spent = time.process_time() - t0
    conn.quit()
    return spent * 1000 / n


def worker_cpu(app: App, connections: int, n: int, pg: bool) -> tuple[float, float]:
    """CPU ms a message of one worker's run (this process, every thread), and of the
    database server's processes serving it (0 on SQLite)."""
    with app.session() as s:
        s.execute(update(Delivery).values(status="pending"))
        s.commit()
    email = replace(app.settings.email, connections=connections)
    app.settings = replace(app.settings, email=email)
    delivering.deliver_pending(app)  # a first run: the pool's connections are open, the code warm
    with app.session() as s:
        s.execute(update(Delivery).values(status="pending"))
        s.commit()
    server = cpu_of(backends(app)) if pg else {}
    t0 = time.process_time()
    report = delivering.deliver_pending(app)
    ours = time.process_time() - t0
    after = cpu_of(backends(app)) if pg else {}
    assert report.sent == n, report
    theirs = sum(v - server.get(pid, 0.0) for pid, v in after.items())
    return ours * 1000 / n, theirs * 1000 / n


def cpu_per_message(subscribers: int = 3000) -> dict[str, float]:
    """A worker's CPU a message (the database server's counted) against raw smtplib's,
    on SQLite and, with DIGEST_TEST_DATABASE_URL, on PostgreSQL; printed side by side."""
    figures: dict[str, float] = {}
    urls = [("SQLite", "")]
    if PG:
        urls.append(("PostgreSQL", "pg"))
    sink = Sink()
    try:
        for name, kind in urls:
            with tempfile.TemporaryDirectory() as tmp, _database(kind) as url:
                app = published_app(Path(tmp), sink.port, subscribers, url)
                messages, _ = built_messages(app)
                raw = raw_cpu(sink.port, messages[:500], subscribers)
                for connections in (1, 2):
                    ours, server = worker_cpu(app, connections, subscribers, bool(kind))
                    total = ours + server
                    key = f"{name}_{connections}"
                    figures[key], figures[f"raw_{key}"] = total, raw
                    print(
                        f"CPU a message, {name}, {connections} connection(s): worker "
                        f"{ours:.2f} ms + database server {server:.2f} ms = {total:.2f} ms"
                        f"   baseline raw smtplib, 1 connection: {raw:.2f} ms"
                        f"   ({total / raw:.2f}x)"
                    )
                app.database.engine.dispose()
    finally:
        sink.stop()
    return figures


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str]:
    if not kind:
        yield ""
        return
    from tests.support.postgres import new_pg_database

    with new_pg_database() as url:
        yield url


def run(subscribers: int = SUBSCRIBERS) -> dict[str, float]:
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = published_app(Path(tmp), sink.port, subscribers)
            messages, build = built_messages(app)
            size = sum(len(m) for m in messages) / len(messages)
            print(f"message size: {size / 1024:.0f} KiB on average")
            print(
                f"build {subscribers} personalised messages: {build:.2f} s "
                f"({subscribers / build:,.0f} messages/s)"
            )
            figures = {"build": subscribers / build}
            figures["baseline"] = baseline(sink.port, messages[:500], subscribers)
            rate = figures["baseline"]
            print(f"baseline: raw smtplib, 1 reused connection:  {rate:7,.0f} messages/s")
            for n in (1, 2, 4, 8):
                before = sink.received
                figures[f"ours_{n}"] = ours(app, n, subscribers)
                assert sink.received - before == subscribers
                rate = figures[f"ours_{n}"]
                print(f"digest deliver_pending, {n} connection(s):   {rate:7,.0f} messages/s")
    finally:
        sink.stop()
    return figures


def test_delivery_cpu_per_message() -> None:
    cpu_per_message(int(os.environ.get("DIGEST_TEST_BENCH_CPU_SUBSCRIBERS", 3000)))


def test_delivery_throughput() -> None:
    figures = run(int(os.environ.get("DIGEST_TEST_BENCH_SUBSCRIBERS", SUBSCRIBERS)))
    assert figures["build"] > figures["baseline"]  # building is never the bottleneck


# --------------------------------------------------------------------------- personalised
# Issue 22: half the readers watch or mute phrases and a tenth have marked papers, so their
# letters are put together from the pieces (mail/assembly.py). Each run publishes
# and delivers in a child process of its own, so its peak RSS is its own; the plain run is
# the baseline of the same run.

# (watch, mute) of the readers who have any, in turn: common words of the sample and rare
# ones, so that some letters change a lot and some not at all
PHRASES = (
    ("diffusion; image generation", ""),
    ("", "benchmark"),
    ("reinforcement learning", "survey; dataset"),
    ("language model; reasoning", "video"),
    ("protein folding", ""),
)
FEEDBACK_MARKS = 20  # marks of each of a tenth of the readers (10 "more", 10 "less")


def personal_rows(subscribers: int, personal: bool) -> str:
    rows = []
    for i in range(subscribers):
        watch, mute = PHRASES[(i // 2) % len(PHRASES)] if personal and i % 2 == 0 else ("", "")
        rows.append(f'reader{i}@example.org,Reader {i},,,"{watch}","{mute}"\n')
    return "email,name,themes,status,watch,mute\n" + "".join(rows)


def _personal_child(folder: str, port: int, subscribers: int, personal: bool, out) -> None:
    import resource

    root = Path(folder)
    shutil.copytree(SAMPLES, root / "dumps")
    settings = Settings(
        digest=DigestSection(dumps_dir="dumps", state_dir="state"),
        email=EmailSection(transport="smtp", smtp_host="127.0.0.1", smtp_port=port, connections=4),
        base_dir=root,
        source="bench",
    )
    app = make_app(settings)
    subscribing.book(app).import_csv(io.StringIO(personal_rows(subscribers, personal)))
    if personal:
        add_marks(app)
    timing = Timing()
    logging.getLogger("digest.mail.assembly").addHandler(timing)
    logging.getLogger("digest.mail.assembly").setLevel(logging.INFO)
    t0 = time.perf_counter()
    publishing.publish(app)
    published = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = delivering.deliver_pending(app)
    elapsed = time.perf_counter() - t0
    assert report.sent == subscribers, report
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    profiles = 1000 * timing.seconds / timing.readers if timing.readers else 0.0
    out.put((subscribers / elapsed, published, peak, profiles))


class Timing(logging.Handler):
    """The profile build time that publishing logs (mail/assembly.py feedback_part)."""

    seconds, readers = 0.0, 0

    def emit(self, record: logging.LogRecord) -> None:
        if "profiles of" in record.msg:
            _, self.readers, self.seconds = record.args  # type: ignore[assignment,misc]


def add_marks(app: App) -> None:
    """FEEDBACK_MARKS marks for every tenth reader (those who watch or mute nothing, so
    their letters are personal by their marks alone), on papers of the issue: the
    dumps are ingested first, as a reader marks papers they have seen."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from digest.state import feedback
    from digest.state.models import Paper, Subscriber

    ingesting.ingest(app)
    with app.session() as s:
        keys = list(s.scalars(select(Paper.key).order_by(Paper.id)))
        ids = list(s.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        now = datetime.now(UTC)
        for n, sid in enumerate(ids[1::10]):
            start = (n * 7) % max(len(keys) - FEEDBACK_MARKS, 1)
            for k, key in enumerate(keys[start : start + FEEDBACK_MARKS]):
                feedback.mark(s, sid, key, 1 if k % 2 == 0 else -1, now)
        s.commit()


def _personal_round(
    port: int, subscribers: int, personal: bool
) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out: multiprocessing.Queue[tuple[float, float, float, float]] = multiprocessing.Queue()
        child = multiprocessing.Process(
            target=_personal_child, args=(tmp, port, subscribers, personal, out)
        )
        child.start()
        figures = out.get(timeout=1800)
        child.join()
        return figures


def run_personal(subscribers: int = SUBSCRIBERS, rounds: int = 2) -> dict[str, float]:
    """The same issue to `subscribers` readers, plain, then with half of them watching or
    muting, `rounds` times in turn (the machine is shared: the best round of each counts):
    messages/s (4 connections) and peak RSS, side by side."""
    sink = Sink()
    figures: dict[str, float] = {}
    try:
        for _ in range(rounds):
            for name, personal in (("plain", False), ("personal", True)):
                rate, published, peak, profiles = _personal_round(sink.port, subscribers, personal)
                if personal:
                    figures["profiles"] = profiles
                print(f"  round: {name:<8} {rate:7,.0f} messages/s, peak RSS {peak:5.0f} MiB")
                best = figures.get(f"{name}_rate", 0.0) < rate
                if best:
                    figures[f"{name}_rate"], figures[f"{name}_publish"] = rate, published
                figures[f"{name}_rss"] = max(figures.get(f"{name}_rss", 0.0), peak)
    finally:
        sink.stop()
    print(f"{subscribers} readers, 4 connections        plain   half watch/mute   ratio")
    for what, key, unit in (
        ("messages/s", "rate", ""),
        ("peak RSS MiB", "rss", ""),
        ("publish s", "publish", ""),
    ):
        a, b = figures[f"plain_{key}"], figures[f"personal_{key}"]
        print(f"  {what:<32}{a:8,.1f}   {b:14,.1f}   {b / a:5.2f}x{unit}")
    print("  targets: messages/s >= 0.70x, peak RSS <= 1.20x")
    print(
        f"  profiles ({subscribers // 10} readers with {FEEDBACK_MARKS} marks): "
        f"{figures['profiles']:.3f} s per thousand readers (target < 1 s)"
    )
    return figures


def test_personalised_delivery_throughput() -> None:
    figures = run_personal(int(os.environ.get("DIGEST_TEST_BENCH_SUBSCRIBERS", SUBSCRIBERS)))
    assert figures["personal_rate"] >= 0.7 * figures["plain_rate"]
    assert figures["personal_rss"] <= 1.2 * figures["plain_rss"]
    assert 0 < figures["profiles"] < 1.0


if __name__ == "__main__":
    count = int(sys.argv[2]) if len(sys.argv) > 2 else SUBSCRIBERS
    if sys.argv[1:2] == ["personal"]:
        run_personal(count)
    else:
        run(int(sys.argv[1]) if len(sys.argv) > 1 else SUBSCRIBERS)
        cpu_per_message()
