"""A real `digest send` process is SIGKILLed in the middle of sending, against an SMTP
server in the test; a second run delivers the rest, one copy per subscriber. (How often
a kill at a random moment duplicates a message is measured by
tests/bench/bench_crash_window.py.)"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.support.crash import Holding, project, start_send
from tests.support.smtp import running_smtp
from tests.support.waiting import wait_for


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
    wait_for(lambda: sum(handler.accepted.values()) >= 8, "the first messages")
    # Freeze every connection at RCPT: no message is then between the server's
    # acceptance and the database write, so the kill cannot cause a duplicate.
    handler.hold = asyncio.Event()
    wait_for(lambda: handler.waiting == connections, "all connections to wait")
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
