"""What the shared rate limit costs: one `GlobalBucket.reserve()` (one UPDATE …
RETURNING in its own write transaction) against the cheapest write transaction on the
same database in the same run (`UPDATE` of a one-row table, no RETURNING), on SQLite
and, with DIGEST_TEST_DATABASE_URL, PostgreSQL; then three processes reserving at once
(blocks per second over all of them). A worker reserves one block per quarter second
of the rate, so the cost per message is one reservation over k = rate / 4 messages.

    python tests/bench/bench_ratelimit.py
    pytest tests/bench -o python_files='bench_*.py' -s -k ratelimit
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from digest.mail.ratelimit import GlobalBucket  # noqa: E402
from digest.state import db  # noqa: E402

PG = os.environ.get("DIGEST_TEST_DATABASE_URL", "")
N = 2000  # reservations timed in one process
BLOCKS = 500  # reservations per process, three at once


def databases() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        yield "SQLite", f"sqlite:///{folder}/bench.db"
    if PG:
        from tests.support.postgres import new_pg_database

        with new_pg_database() as url:
            yield "PostgreSQL", url


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def measure(name: str, url: str, folder: Path) -> None:
    engine = db.make_engine(url)
    db.upgrade(engine)
    writes = db.for_writes(engine)
    with writes.begin() as conn:
        conn.execute(text("CREATE TABLE bench_one (n BIGINT NOT NULL)"))
        conn.execute(text("INSERT INTO bench_one VALUES (0)"))

    def baseline() -> None:
        with writes.begin() as conn:
            conn.execute(text("UPDATE bench_one SET n = n + 1"))

    bucket = GlobalBucket(writes.begin, 1000.0)  # 250 slots a block
    base = per_call(baseline, N)
    reserve = per_call(bucket.reserve, N)
    print(f"{name}: reserve() of a block of {bucket.k} slots: {reserve * 1e3:.3f} ms")
    print(f"  baseline, the cheapest write transaction (UPDATE of one row): {base * 1e3:.3f} ms")
    print(f"  at 1,000 messages/s: {reserve / bucket.k * 1e6:.2f} µs of database time a message")
    engine.dispose()
    go = folder / f"go-{name}"
    command = [sys.executable, "-m", "tests.support.bucket", url, "1000", str(BLOCKS), str(go)]
    procs = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    go.touch()
    for p in procs:
        p.communicate()
    took = time.perf_counter() - start
    print(f"  three processes at once: {3 * BLOCKS / took:,.0f} blocks/s in all")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for name, url in databases():
            measure(name, url, Path(folder))
    if not PG:
        print("PostgreSQL: skipped (set DIGEST_TEST_DATABASE_URL)")


def test_ratelimit_cost() -> None:
    main()


if __name__ == "__main__":
    main()
