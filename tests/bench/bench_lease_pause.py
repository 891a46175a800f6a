"""Soak: workers paused past their lease, and a worker whose clock is off, through the
real Postfix of the tests ($DIGEST_TEST_POSTFIX, from .ci/postfix.sh), on SQLite and
PostgreSQL ($DIGEST_TEST_DATABASE_URL).

Each repetition has two parts, each on a new state and a new recipient domain:

- pause: three `digest worker --drain` (email.lease_seconds = 4, claim_batch = 50, two
  connections each); one is SIGSTOPped while it holds 10 rows or more, at a moment it
  holds no database lock, until the other two have taken its rows over and sent them;
  then SIGCONT. Copies twice (counted in Postfix's Maildir by Delivered-To) are printed
  against the bound: the paused worker's connections, each of which may have had one
  message in flight.
- skew: two `digest worker --drain` and, in this process, a third whose clock runs 30 s
  ahead (email.lease_seconds = 10) joining while they hold rows. Nobody stops: the
  bound is 0.

    python tests/bench/bench_lease_pause.py [REPETITIONS] [sqlite|postgresql ...]

Prints one line per part and repetition, then the totals; exits 1 when a bound was
exceeded or a reader got nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select  # noqa: E402

from digest.app import (  # noqa: E402
    delivering,
    make_app,
)
from digest.config import load_settings  # noqa: E402
from digest.state.models import Delivery  # noqa: E402
from tests.support.leases import pause_one, project, publish, start_worker  # noqa: E402
from tests.support.postgres import new_pg_database  # noqa: E402
from tests.support.waiting import HANG, wait_for  # noqa: E402
from tests.test_delivery_workers import copies, postfix, queued_for  # noqa: E402

READERS = 150
SKEW = timedelta(seconds=30)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'state' / 'digest.db'}"
    else:
        with new_pg_database() as url:
            yield url


def delivered(maildir: Path, domain: str, readers: int) -> Counter[str]:
    """The copies per reader once Postfix has delivered everything for `domain`."""

    def settled() -> Counter[str] | None:
        if queued_for(domain):
            return None
        got = copies(maildir, domain)
        return got if sum(got.values()) >= readers else None

    got = wait_for(settled, f"Postfix to deliver every message for {domain}")
    assert got is not None
    return got


def twice(got: Counter[str]) -> int:
    return sum(n - 1 for n in got.values())


def pause_part(kind: str, host: str, port: int, maildir: Path) -> tuple[int, int, int, bool]:
    domain = f"lp{uuid.uuid4().hex[:10]}.test"
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        config = project(Path(tmp), url, host, port, lease=4.0, batch=50)
        publish(config, url, domain, READERS)
        pause = pause_one(config, url, at_least=10)
        got = delivered(maildir, domain, READERS)
        return pause.held, twice(got), pause.bound, len(got) == READERS


def skew_part(kind: str, host: str, port: int, maildir: Path) -> tuple[int, bool]:
    domain = f"ls{uuid.uuid4().hex[:10]}.test"
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        config = project(Path(tmp), url, host, port, lease=10.0, batch=50)
        publish(config, url, domain, READERS)
        procs = [start_worker(config, "--drain") for _ in range(2)]
        try:
            engine = create_engine(url)

            def held() -> bool:
                with engine.connect() as conn:
                    n = conn.scalar(select(func.count()).where(Delivery.status == "sending"))
                return bool(n)

            wait_for(held, "the other workers to hold rows")
            engine.dispose()
            ahead = make_app(load_settings(str(config)), clock=lambda: datetime.now(UTC) + SKEW)
            delivering.deliver_pending(ahead, drain=True)
            for p in procs:
                p.communicate(timeout=HANG)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        got = delivered(maildir, domain, READERS)
        return twice(got), len(got) == READERS


def run(repetitions: int, kinds: list[str]) -> int:
    host, port, maildir = postfix()
    broken = 0
    for kind in kinds:
        totals = Counter[str]()
        started = time.monotonic()
        for i in range(1, repetitions + 1):
            held, dup, bound, everyone = pause_part(kind, host, port, maildir)
            ok = dup <= bound and everyone
            broken += not ok
            totals.update(pauses=1, held=held, twice=dup, bound=bound, bad=int(not ok))
            print(
                f"{kind} #{i:2d} pause: held {held:3d}, copies twice {dup} "
                f"(bound: {bound} connections in flight){'' if ok else '  <-- BROKEN'}",
                flush=True,
            )
            sdup, everyone = skew_part(kind, host, port, maildir)
            ok = sdup == 0 and everyone
            broken += not ok
            totals.update(skewed=1, skew_twice=sdup, bad=int(not ok))
            print(
                f"{kind} #{i:2d} skew +30 s: copies twice {sdup} (bound: 0)"
                f"{'' if ok else '  <-- BROKEN'}",
                flush=True,
            )
        print(
            f"{kind}: {totals['pauses']} pauses holding {totals['held']} rows in all: "
            f"{totals['twice']} copies twice against a bound of {totals['bound']} "
            f"({totals['twice'] / max(1, totals['pauses']):.2f} per pause, bound 2); "
            f"{totals['skewed']} skewed workers: {totals['skew_twice']} copies twice "
            f"(bound 0); {totals['bad']} broken; {time.monotonic() - started:.0f} s",
            flush=True,
        )
    return 1 if broken else 0


def test_lease_pause_soak() -> None:
    assert run(3, ["sqlite", "postgresql"]) == 0


if __name__ == "__main__":
    args = sys.argv[1:]
    reps = int(args[0]) if args and args[0].isdigit() else 20
    chosen = [a for a in args if a in ("sqlite", "postgresql")] or ["sqlite", "postgresql"]
    sys.exit(run(reps, chosen))
