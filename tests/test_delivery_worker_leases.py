"""Leases under pauses and clock skew: a worker paused past its lease (SIGSTOP of a
real `digest worker`) does not send its batch again once the others took it over,
and a host whose clock runs ahead or behind neither takes a live worker's rows nor
has its own taken. At most the message each connection had in flight goes out twice.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.app import delivering, inspecting, make_app, publishing
from digest.config import load_settings
from digest.mail.delivery import DeliveryReport
from digest.state.models import Delivery
from tests.support.delivery import addresses, small_settings, subscribe
from tests.support.dumps import write_dump
from tests.support.leases import pause_one, project, publish, start_worker, stop_a_holder
from tests.support.postgres import new_pg_database
from tests.support.smtp import Recorder, release, running_smtp
from tests.support.waiting import HANG, wait_for


@contextlib.contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    else:
        with new_pg_database() as url:
            yield url


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_worker_paused_past_its_lease_does_not_send_its_batch_again(
    tmp_path: Path, kind: str
) -> None:
    readers = 150
    domain = f"p{uuid.uuid4().hex[:10]}.test"
    with database(kind, tmp_path) as url, running_smtp(Recorder()) as (controller, recorder):
        config = project(tmp_path, url, "127.0.0.1", controller.port, lease=4.0, batch=50)
        publish(config, url, domain, readers)
        pause = pause_one(config, url, at_least=10)
        got = Counter(to for tos, _ in recorder.messages for to in tos)
        assert set(got) == {f"r{i}@{domain}" for i in range(readers)}, "someone got nothing"
        twice = sum(n - 1 for n in got.values())
        # the paused worker held `held` rows; only what its connections had in flight
        # may have gone out a second time
        assert pause.held >= 10
        assert twice <= pause.bound, (twice, pause)
        assert "lease on its deliveries ran out" in pause.victim_out, pause.victim_out


class Gate(Recorder):
    """Holds every message at DATA until the test opens the gate; counts arrivals."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.waiting += 1
        await self.gate.wait()
        return await super().handle_DATA(server, session, envelope)


def copies(*recorders: Recorder) -> Counter[str]:
    return Counter(to for r in recorders for tos, _ in r.messages for to in tos)


@pytest.mark.parametrize(
    ("holder_skew", "other_skew"),
    [
        (0, 30),  # another host's clock runs 30 s ahead: it must not take live rows
        (-30, 0),  # the holder's clock runs 30 s behind: its rows must not look expired
    ],
)
def test_a_host_whose_clock_is_off_never_takes_a_live_workers_rows(
    tmp_path: Path, database_url: str, holder_skew: int, other_skew: int
) -> None:
    """Two workers in this process, each with its own clock (the app's clock, as the
    host's clock would be) and its own SMTP server. The holder claims every row and is
    held at DATA, alive (its heartbeat renews its lease); the other runs meanwhile with
    email.lease_seconds = 10. The leases are measured by the database's clock, so
    neither clock matters: the other finds nothing to take."""

    def clock(skew: int) -> Callable[[], datetime]:
        return lambda: datetime.now(UTC) + timedelta(seconds=skew)

    with running_smtp(Gate()) as (held_at, gate), running_smtp(Recorder()) as (other_at, other):
        settings = small_settings(
            tmp_path, database_url, held_at.port, lease_seconds=10.0, connections=1
        )
        holder = make_app(settings, clock=clock(holder_skew))
        readers = addresses(6)
        subscribe(holder, *readers)
        assert publishing.publish(holder).issue == 1
        result: list[DeliveryReport] = []
        thread = threading.Thread(target=lambda: result.append(delivering.deliver_pending(holder)))
        thread.start()
        try:
            wait_for(lambda: gate.waiting == 1, "the holder to hand its first message over")

            def sending() -> int:
                with holder.session() as s:
                    return int(
                        s.scalar(select(func.count()).where(Delivery.status == "sending")) or 0
                    )

            assert sending() == 6  # the holder claimed the whole batch
            elsewhere = make_app(
                small_settings(tmp_path, database_url, other_at.port, lease_seconds=10.0),
                clock=clock(other_skew),
            )
            report = delivering.deliver_pending(elsewhere)
            assert report.sent == 0 and not other.messages, copies(other)
            assert sending() == 6
        finally:
            release(held_at, gate.gate)
            thread.join(HANG)
        assert result and result[0].sent == 6, result
        assert copies(gate, other) == Counter({a: 1 for a in readers})


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_a_polling_worker_paused_past_its_lease_starts_over_and_keeps_delivering(
    tmp_path: Path, kind: str
) -> None:
    """`digest worker` without --drain is a service: after its lease ran out it lets go
    of its rows and goes on as a new worker (exiting would leave it down for good,
    since a clean exit is not a failure to restart)."""
    readers = 100
    domain = f"f{uuid.uuid4().hex[:10]}.test"
    with database(kind, tmp_path) as url, running_smtp(Recorder()) as (controller, recorder):
        config = project(tmp_path, url, "127.0.0.1", controller.port, lease=4.0, batch=50)
        publish(config, url, domain, readers)
        app = make_app(load_settings(str(config)))
        procs = [start_worker(config) for _ in range(2)]
        try:
            pid, held = stop_a_holder(app.database.engine, procs, 10)
            other = next(p for p in procs if p.pid != pid)

            def count(*where: Any) -> int:
                with app.session() as s:
                    return int(s.scalar(select(func.count()).select_from(Delivery).where(*where)))

            def stuck() -> str:
                """What the rows and the other worker were doing, to tell a hang apart."""
                with app.session() as s:
                    statuses = Counter(
                        s.scalars(select(Delivery.status).where(Delivery.id.in_(held)))
                    )
                state = "running"
                if other.poll() is not None:
                    _, err = other.communicate(timeout=HANG)
                    state = f"exited {other.returncode}: {err.decode()[-2000:]}"
                return (
                    "the other worker to take over and send the paused worker's rows "
                    f"(held rows now {dict(statuses)}; the other worker {state})"
                )

            wait_for(
                lambda: count(Delivery.id.in_(held), Delivery.status == "sent") == len(held),
                stuck,
            )
            before = {w.id for w in inspecting.workers(app) if w.pid == pid}
            os.kill(pid, signal.SIGCONT)
            wait_for(
                lambda: {w.id for w in inspecting.workers(app) if w.pid == pid} - before,
                "the paused worker to start over as a new worker",
            )
            other.send_signal(signal.SIGTERM)
            assert other.wait(HANG) == 143
            write_dump(
                app.settings.dumps_dir / "1.txt",
                [("A second paper", "An abstract of the second paper. " * 8)],
            )
            assert publishing.publish(app).issue == 2  # only the paused worker is left
            wait_for(
                lambda: count(Delivery.status == "sent") == 2 * readers,
                "the worker that was paused to deliver the second issue",
            )
            victim = next(p for p in procs if p.pid == pid)
            victim.send_signal(signal.SIGTERM)
            out, err = victim.communicate(timeout=HANG)
            assert victim.returncode == 143 and out.startswith(b"worker: "), err.decode()
            assert b"starting over as a new worker" in err, err.decode()
        finally:
            for p in procs:
                if p.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                    p.wait()
            app.database.engine.dispose()
        got = Counter(to for tos, _ in recorder.messages for to in tos)
        assert set(got) == {f"r{i}@{domain}" for i in range(readers)}
        assert sum(n - 2 for n in got.values()) <= 2, got  # two issues each, but in flight


@pytest.mark.postgres
def test_a_worker_stopped_inside_a_transaction_lets_go_of_its_rows_locks() -> None:
    """A worker stopped (SIGSTOP, a paused VM) between two statements of one of its
    transactions holds its rows' locks; the server ends that session once it has been
    idle for the bound the worker set, so another worker's update of those rows goes
    through instead of waiting for as long as the pause lasts."""
    from sqlalchemy import create_engine, text

    from digest.state.handles import end_if_paused

    with new_pg_database() as url:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE held (id int PRIMARY KEY, v int)"))
            conn.execute(text("INSERT INTO held VALUES (1, 0)"))
        paused = engine.connect()
        paused.begin()
        end_if_paused(paused, 1.0)
        paused.execute(text("UPDATE held SET v = 1 WHERE id = 1"))  # then it stops

        def others_get_the_row() -> bool:
            try:
                with engine.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    conn.execute(text("UPDATE held SET v = 2 WHERE id = 1"))
                return True
            except Exception:  # the lock is still held: try again
                return False

        wait_for(others_get_the_row, "the stopped transaction's lock to be let go")
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT v FROM held WHERE id = 1")) == 2  # never 1
        paused.invalidate()
        engine.dispose()
