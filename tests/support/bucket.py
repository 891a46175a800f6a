"""A process that draws from the shared rate-limit bucket, for tests that need several
at once: ``python -m tests.support.bucket URL RATE BLOCKS GO`` opens its own engine,
prints ``ready``, waits until the file GO exists (so all start together), reserves
BLOCKS blocks as fast as it can and prints them as one JSON list of
``[start, count, interval, db_now]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from digest.mail.ratelimit import GlobalBucket
from digest.state import db
from tests.support.waiting import wait_for


def main(url: str, rate: float, blocks: int, go: Path) -> None:
    engine = db.make_engine(url)
    bucket = GlobalBucket(db.for_writes(engine).begin, rate)
    print("ready", flush=True)
    wait_for(go.exists, f"{go} to appear", interval=0.005)
    taken = [bucket.reserve() for _ in range(blocks)]
    print(json.dumps([[b.start, b.count, b.interval, b.db_now] for b in taken]), flush=True)
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
