"""A real `digest send` process is SIGKILLed in the middle of sending, against an SMTP
server in the test; a second run delivers the rest, one copy per subscriber.

``measure_duplicates`` kills at random moments instead, many times, and counts the
copies that arrive twice (a message the server accepted just before the kill, which
the database had not yet recorded as sent). Run it as a script:

    python tests/test_crash.py KILLS [CONNECTIONS...]   # e.g. 40 1 4
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port, running_smtp  # noqa: E402
from tests.test_delivery import FaultyServer  # noqa: E402
from tests.test_pipeline import write_dump  # noqa: E402


def project(folder: Path, port: int, readers: int, connections: int) -> Path:
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    write_dump(folder / "dumps" / "0.txt", [(f"Paper {i}", "An abstract. " * 8) for i in range(5)])
    recipients = ", ".join(f'"r{i}@example.org"' for i in range(readers))
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        f"smtp_timeout = 5.0\nconnections = {connections}\nrecipients = [{recipients}]\n"
    )
    return config


def start_send(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config), "send"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Holding(FaultyServer):
    """Counts the RCPT commands waiting on ``hold``."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay=delay)
        self.waiting = 0
        self.ids: Counter[str] = Counter()  # Message-ID -> copies accepted

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        self.waiting += 1
        try:
            return await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        finally:
            self.waiting -= 1

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            self.ids[self.messages[-1]["Message-ID"]] += 1
        return reply


@pytest.fixture
def holding() -> Iterator[tuple[Controller, Holding]]:
    with running_smtp(Holding(delay=0.02)) as running:
        yield running


def test_sigkill_mid_send_then_a_second_run_sends_exactly_one_copy_each(
    tmp_path: Path, holding: tuple[Controller, Holding]
) -> None:
    controller, handler = holding
    readers, connections = 30, 3
    config = project(tmp_path, controller.port, readers, connections)
    proc = start_send(config)
    wait_for(lambda: sum(handler.accepted.values()) >= 8, 30, "the first messages")
    # Freeze every connection at RCPT: no message is then between the server's
    # acceptance and the database write, so the kill cannot cause a duplicate.
    handler.hold = asyncio.Event()
    wait_for(lambda: handler.waiting == connections, 10, "all connections to wait")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = sum(handler.accepted.values())
    assert 8 <= first < readers
    hold, handler.hold = handler.hold, None
    controller.loop.call_soon_threadsafe(hold.set)

    second = start_send(config)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err.decode()
    assert f"{readers - first} sent, 0 failed" in out.decode()
    assert "were in flight when an earlier run stopped" in " ".join(err.decode().split())
    assert handler.accepted == Counter({f"r{i}@example.org": 1 for i in range(readers)})
    assert set(handler.ids.values()) == {1}


def kill_at_random(handler: Holding, config: Path) -> bool:
    """Start a send, wait for its first accepted message, SIGKILL it a random moment
    later; True when it was still running."""
    before = sum(handler.accepted.values())
    proc = start_send(config)
    wait_for(
        lambda: sum(handler.accepted.values()) > before or proc.poll() is not None,
        60,
        "a message",
    )
    time.sleep(random.uniform(0.0, 0.15))
    killed = proc.poll() is None
    if killed:
        proc.kill()
    proc.wait()
    return killed


def measure_duplicates(kills: int, readers: int = 200, connections: int = 4) -> dict[str, int]:
    """Kill `digest send` at random moments, `kills` times, publishing a new issue
    whenever one is fully delivered; then finish. Counts messages accepted twice."""
    handler = Holding(delay=0.002)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    done = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = project(Path(tmp), controller.port, readers, connections)
            for k in range(kills):
                done += kill_at_random(handler, config)
                write_dump(
                    Path(tmp) / "dumps" / f"{k + 1}.txt",
                    [(f"Issue paper {k}", "An abstract. " * 9)],
                )
            finish = start_send(config)
            finish.communicate(timeout=600)
            assert finish.returncode == 0
    finally:
        controller.stop()
    copies = list(handler.ids.values())
    return {
        "kills_mid_send": done,
        "messages": sum(copies),
        "duplicates": sum(c - 1 for c in copies if c > 1),
    }
