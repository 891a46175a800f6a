"""Stopping a delivery: Ctrl-C / SIGTERM on a real `digest send` process, the run's
deadline, and the circuit breaker for a server that stalls. Servers are aiosmtpd
handlers that hold messages on events the test controls; nothing waits on the clock."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, select

from digest.app import make_app, publishing
from digest.state.models import Delivery
from tests.support.crash import start_send
from tests.support.delivery import addresses, small_settings, states, subscribe
from tests.support.dumps import write_dump
from tests.support.smtp import running_smtp
from tests.support.waiting import wait_for

READERS = 20


class Gate:
    """Accepts the first `free` messages, then holds each DATA until `gate` opens
    (`gate` never opening: a server that stalls after the message was handed over)."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.accepted: Counter[str] = Counter()
        self.held: list[str] = []  # recipients whose message waits in DATA
        self.gate: asyncio.Event | None = None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        (address,) = envelope.rcpt_tos
        if self.free <= 0:
            if self.gate is None:
                self.gate = asyncio.Event()
            self.held.append(address)
            await self.gate.wait()
            self.held.remove(address)
        self.free -= 1
        self.accepted[address] += 1
        return "250 2.0.0 accepted"

    def open(self, controller: Controller) -> None:
        def release() -> None:
            if self.gate is None:
                self.gate = asyncio.Event()
            self.gate.set()

        controller.loop.call_soon_threadsafe(release)


@pytest.fixture
def gate() -> Iterator[tuple[Controller, Gate]]:
    handler = Gate(free=3)
    with running_smtp(handler) as running:
        yield running
        handler.open(running[0])


def project(folder: Path, port: int) -> Path:
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    write_dump(folder / "dumps" / "0.txt", [(f"Paper {i}", "An abstract. " * 8) for i in range(5)])
    recipients = ", ".join(f'"r{i}@example.org"' for i in range(READERS))
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        f"smtp_timeout = 60.0\nconnections = 2\nclaim_batch = 5\nrecipients = [{recipients}]\n"
    )
    return config


class Lines:
    """A process's stderr, read as it comes."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.text = ""
        assert proc.stderr is not None
        stream = proc.stderr
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: object) -> None:
        for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
            self.text += line.decode()


def rows(folder: Path) -> Counter[str]:
    engine = create_engine(f"sqlite:///{folder / 'state' / 'digest.db'}")
    with engine.connect() as conn:
        found = Counter(conn.scalars(select(Delivery.status)))
    engine.dispose()
    return found


def sending(folder: Path) -> set[str]:
    engine = create_engine(f"sqlite:///{folder / 'state' / 'digest.db'}")
    with engine.connect() as conn:
        found = set(conn.scalars(select(Delivery.address).where(Delivery.status == "sending")))
    engine.dispose()
    return found


def test_sigterm_lets_messages_in_flight_finish_and_leaves_the_rest_pending(
    tmp_path: Path, gate: tuple[Controller, Gate]
) -> None:
    controller, handler = gate
    proc = start_send(project(tmp_path, controller.port))
    err = Lines(proc)
    wait_for(lambda: len(handler.held) == 2, "both connections to hold a message")
    proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping:" in err.text, "the process to say it is stopping")
    handler.open(controller)  # the two messages in flight are accepted
    out = proc.communicate(timeout=60)[0].decode()
    err.thread.join(60)
    assert proc.returncode == 143, err.text
    assert "Traceback" not in err.text
    assert "5 sent, 0 failed" in out, out
    assert sum(handler.accepted.values()) == 5 and set(handler.accepted.values()) == {1}
    assert rows(tmp_path) == Counter({"sent": 5, "pending": READERS - 5})

    again = start_send(project(tmp_path, controller.port))  # the next run sends the rest
    out = again.communicate(timeout=60)[0].decode()
    assert again.returncode == 0 and f"{READERS - 5} sent, 0 failed" in out
    assert handler.accepted == Counter({f"r{i}@example.org": 1 for i in range(READERS)})


def test_a_second_ctrl_c_stops_at_once_and_only_handed_over_messages_stay_sending(
    tmp_path: Path, gate: tuple[Controller, Gate]
) -> None:
    controller, handler = gate
    proc = start_send(project(tmp_path, controller.port))
    err = Lines(proc)
    wait_for(lambda: len(handler.held) == 2, "both connections to hold a message")
    held = set(handler.held)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: "stopping:" in err.text, "the process to say it is stopping")
    proc.send_signal(signal.SIGINT)  # the server never answers: only this ends the run
    out = proc.communicate(timeout=60)[0].decode()
    err.thread.join(60)
    assert proc.returncode == 130, err.text
    assert "Traceback" not in err.text and "_shutdown" not in err.text
    assert "3 sent" in out and "stopped at once" in out, out
    # the two held messages were handed over whole: the server may accept them yet, so
    # they wait for their lease; every other claimed row is pending again
    assert sending(tmp_path) == held
    assert rows(tmp_path) == Counter({"sent": 3, "sending": 2, "pending": READERS - 5})


class Silent:
    """Takes the whole message and never answers DATA."""

    def __init__(self) -> None:
        self.waiting = 0
        self.stop: asyncio.Event | None = None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.waiting += 1
        if self.stop is None:
            self.stop = asyncio.Event()
        await self.stop.wait()
        return "451 4.3.0 too late"


@pytest.fixture
def silent() -> Iterator[tuple[Controller, Silent]]:
    handler = Silent()
    with running_smtp(handler) as running:
        yield running
        if handler.stop is not None:
            running[0].loop.call_soon_threadsafe(handler.stop.set)


def test_a_stalled_server_trips_the_breaker_across_connections(
    tmp_path: Path, database_url: str, silent: tuple[Controller, Silent]
) -> None:
    controller, _ = silent
    settings = small_settings(
        tmp_path,
        database_url,
        controller.port,
        # the server answers the greeting and EHLO at once but never DATA: a timeout far
        # above the greeting's time on a loaded machine (0.2 s was not, with five suites
        # at once on 2 cores: the first connection failed before DATA)
        smtp_timeout=2.0,
        breaker_failures=3,
        max_attempts=4,
        max_run_minutes=0,
    )
    app = make_app(settings)
    subscribe(app, *addresses(READERS))
    report = publishing.send(app)
    d = report.delivery
    assert report.issue == 1 and d.sent == 0
    assert "timed out or dropped the connection 3 times in a row" in d.stopped
    assert "left pending for the next run" in d.stopped
    # without the breaker every message would be tried max_attempts times: 80 tries
    with app.session() as s:
        tries = sum(s.scalars(select(Delivery.attempts)))
    assert 3 <= tries <= 3 + settings.email.connections
    assert set(states(app).values()) == {"pending"}


def test_the_run_deadline_leaves_the_rest_pending_with_a_clear_line(
    tmp_path: Path, database_url: str, silent: tuple[Controller, Silent]
) -> None:
    controller, _ = silent
    # each message takes at least smtp_timeout (the server never answers): 20 of them
    # over 2 connections need 5 s, far past a 0.06 s deadline
    settings = small_settings(
        tmp_path,
        database_url,
        controller.port,
        smtp_timeout=0.5,
        breaker_failures=0,
        max_run_minutes=0.001,
    )
    app = make_app(settings)
    subscribe(app, *addresses(READERS))
    d = publishing.send(app).delivery
    assert d.sent == 0 and "stopped after email.max_run_minutes = 0.001" in d.stopped
    with app.session() as s:
        tries = sum(s.scalars(select(Delivery.attempts)))
    assert tries < READERS  # the deadline may pass before the first attempt
    assert set(states(app).values()) == {"pending"}
