"""The rate limit every delivery worker draws from together: a bucket in the state
(real SQLite and PostgreSQL). Assertions are on the slots the bucket handed out, never
on how long anything took."""

from __future__ import annotations

import bisect
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.pool import StaticPool

from digest.mail.ratelimit import MICRO, GlobalBucket
from digest.state import db
from digest.state.models import RateBucket
from tests.support.dumps import ROOT
from tests.support.waiting import HANG


def spaced(slots: list[int], interval: int) -> None:
    """No two slots closer than the interval, and no window of W seconds holding more
    than rate × W + 1 of them."""
    slots = sorted(slots)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= interval, f"two slots {min(gaps)} µs apart (interval {interval} µs)"
    rate = MICRO / interval
    for window in (0.1, 0.25, 1.0, 3.0):
        width = int(window * MICRO)
        most = max(bisect.bisect_left(slots, s + width) - i for i, s in enumerate(slots))
        assert most <= rate * window + 1, f"{most} slots within {window} s at {rate:g}/s"


def bucket_engine(url: str):  # type: ignore[no-untyped-def]
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def test_block_size_covers_a_quarter_second_and_at_least_one_slot() -> None:
    never = create_engine("sqlite://").begin  # never called while sizing
    assert (GlobalBucket(never, 20).k, GlobalBucket(never, 20).interval) == (5, 50_000)
    assert GlobalBucket(never, 0.5).k == 1
    assert GlobalBucket(never, 1000).k == 250
    assert GlobalBucket(never, 3).interval == 333_334  # rounded up: never above the rate


def test_no_limit_touches_no_table() -> None:
    # an empty database: any statement on rate_buckets would fail
    engine = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    bucket = GlobalBucket(engine.begin, 0)
    assert [bucket.wait() for _ in range(3)] == [None, None, None]
    assert bucket.reservations == 0
    with pytest.raises(ValueError, match="rate of 0"):
        bucket.reserve()


def test_a_block_starts_no_earlier_than_the_database_clock_and_follows_the_last(
    database_url: str,
) -> None:
    engine = bucket_engine(database_url)
    bucket = GlobalBucket(db.for_writes(engine).begin, 40)
    first, second = bucket.reserve(), bucket.reserve()
    assert first.start == first.db_now  # a fresh bucket starts now, by the database
    assert second.start == first.start + first.count * first.interval
    assert second.start >= second.db_now
    with engine.connect() as conn:
        stored = conn.scalar(select(RateBucket.next_slot).where(RateBucket.name == "email"))
    assert stored == second.start + second.count * second.interval
    with engine.begin() as conn:  # a bucket row gone missing is made again
        conn.execute(delete(RateBucket))
    again = bucket.reserve()
    assert again.start == again.db_now and again.count == bucket.k
    engine.dispose()


def test_a_clock_stepped_back_starts_the_bucket_over(database_url: str) -> None:
    engine = bucket_engine(database_url)
    bucket = GlobalBucket(db.for_writes(engine).begin, 40)
    now = bucket.reserve().db_now

    def ahead_by(seconds: float) -> None:
        with engine.begin() as conn:
            conn.execute(update(RateBucket).values(next_slot=now + int(seconds * MICRO)))

    ahead_by(30)  # within what workers can hold ahead: kept
    kept = bucket.reserve()
    assert kept.start == now + 30 * MICRO
    ahead_by(3600)  # an hour ahead of the database's clock: it stepped back
    fresh = bucket.reserve()
    assert fresh.start == fresh.db_now
    engine.dispose()


def test_three_processes_never_get_slots_closer_than_the_interval(
    database_url: str, tmp_path: Path
) -> None:
    # 12 slots a block: 1,440 slots from three processes, 29 s of them (they are taken
    # as fast as they come, not waited for): within the bucket's 60 s horizon
    rate, blocks = 50.0, 40
    bucket_engine(database_url).dispose()
    go = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    command = [sys.executable, "-m", "tests.support.bucket", database_url]
    procs = [
        subprocess.Popen(
            [*command, str(rate), str(blocks), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    go.touch()  # all three reserve at once
    taken = []
    for p in procs:
        out, err = p.communicate(timeout=HANG)
        assert p.returncode == 0, err
        taken.append(json.loads(out))
    interval = taken[0][0][2]
    assert interval == MICRO / rate
    slots = []
    for blocks_of_one in taken:
        assert len(blocks_of_one) == blocks
        for start, count, step, db_now in blocks_of_one:
            assert step == interval and count == 12
            assert start >= db_now  # never a slot before the database's now
            slots += [start + i * step for i in range(count)]
    assert len(slots) == len(set(slots)) == 3 * blocks * 12
    spaced(slots, interval)


def test_threads_of_a_process_share_a_block(tmp_path: Path) -> None:
    engine = bucket_engine(f"sqlite:///{tmp_path / 'state.db'}")
    bucket = GlobalBucket(db.for_writes(engine).begin, 2000)  # 500 slots a block
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(100):
            slot = bucket.wait()
            assert slot is not None
            with lock:
                got.append(slot)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG)
    assert len(got) == len(set(got)) == 400
    spaced(got, bucket.interval)
    # one database round trip per block, not per message (a slot reached too late is
    # dropped, which can cost a few more blocks on a busy machine, never 400)
    assert bucket.reservations * bucket.k >= 400
    assert bucket.reservations < 400 // 4
    engine.dispose()


def test_a_slot_is_a_local_deadline_the_thread_waits_for(tmp_path: Path) -> None:
    engine = bucket_engine(f"sqlite:///{tmp_path / 'state.db'}")
    bucket = GlobalBucket(db.for_writes(engine).begin, 10)
    other = GlobalBucket(db.for_writes(engine).begin, 10)
    ahead = other.reserve()  # another worker holds the next quarter second
    stop = threading.Event()
    stop.set()  # a stop ends the wait at once, and the slot is still handed back
    slot = bucket.wait(stop)
    assert slot == ahead.start + ahead.count * ahead.interval
    assert bucket.reservations == 1
    engine.dispose()


def test_slots_reached_too_late_are_dropped_not_sent_in_a_burst(tmp_path: Path) -> None:
    engine = bucket_engine(f"sqlite:///{tmp_path / 'state.db'}")
    bucket = GlobalBucket(db.for_writes(engine).begin, 40)  # 10 slots 25 ms apart
    first = bucket.wait()
    block = bucket._block
    assert block is not None and first == block.start and bucket._late == 0.25

    def slot(i: int) -> int:
        return block.start + i * block.interval

    # a thread back just over a block's span after slot 4's time: 1-4 are dropped
    back = bucket._deadline(slot(4)) + bucket._late + 0.001
    assert bucket._next_slot(back) == slot(5)
    assert bucket.dropped == 4
    assert bucket._next_slot(back + 60) is None  # the rest of the block is stale
    assert bucket.dropped == 8 and bucket.reservations == 1
    engine.dispose()
