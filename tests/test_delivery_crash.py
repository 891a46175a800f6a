"""A real `digest send` process is SIGKILLed in the middle of sending, against an SMTP
server in the test; a second run delivers the rest, one copy per subscriber, but for at
most the one message each connection had in flight (accepted by the server, its answer
not yet read). On SQLite and on PostgreSQL, whose marks take the lean path (one
autocommitted statement a message). (How often a kill at a random moment duplicates a
message is measured by tests/bench/bench_crash_window.py.)"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from tests.support.crash import Holding, project, start_send
from tests.support.smtp import release, running_smtp
from tests.support.waiting import HANG, wait_for


def test_sigkill_mid_send_then_a_second_run_sends_exactly_one_copy_each(
    tmp_path: Path, database_url: str
) -> None:
    readers, connections, before_kill = 30, 3, 8
    url = database_url if database_url.startswith("postgresql") else ""
    # After 8 acceptances the server holds every connection at RCPT: no message is then
    # between the server's acceptance and the database write, so the kill cannot cause
    # a duplicate, and the kill comes at this point whatever the machine's speed.
    with running_smtp(Holding(hold_from=before_kill)) as (controller, handler):
        config = project(tmp_path, controller.port, readers, connections, url)
        proc = start_send(config)
        wait_for(lambda: handler.waiting == connections, "every connection to be held")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = sum(handler.accepted.values())
        # each other connection may have had one message past RCPT when the 8th landed
        assert before_kill <= first < before_kill + connections
        release(controller, handler.gate)

        second = start_send(config)
        out, err = second.communicate(timeout=HANG)
        assert second.returncode == 0, err.decode()
        assert f"{readers - first} sent, 0 failed" in out.decode()
        assert "were in flight when an earlier run stopped" in " ".join(err.decode().split())
        assert handler.accepted == Counter({f"r{i}@example.org": 1 for i in range(readers)})
        assert set(handler.ids.values()) == {1}


def test_sigkill_while_every_connection_awaits_its_answer_duplicates_one_a_connection(
    tmp_path: Path, database_url: str
) -> None:
    """The worst moment: the server has accepted one message on every connection and
    not yet answered. Every message accepted before was marked sent already (a mark is
    never held back for a later write), so the next run re-sends exactly those in
    flight: at most one a connection."""
    readers, connections, before_kill = 40, 3, 12
    url = database_url if database_url.startswith("postgresql") else ""
    with running_smtp(Holding(hold_from=before_kill, at_data=True)) as (controller, handler):
        config = project(tmp_path, controller.port, readers, connections, url)
        proc = start_send(config)
        wait_for(lambda: handler.waiting == connections, "every connection to await its answer")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = sum(handler.accepted.values())
        release(controller, handler.gate)

        second = start_send(config)
        out, err = second.communicate(timeout=HANG)
        assert second.returncode == 0, err.decode()
        copies = Counter(handler.accepted)
        assert set(copies) == {f"r{i}@example.org" for i in range(readers)}  # none lost
        duplicates = sum(n - 1 for n in copies.values())
        assert duplicates == connections  # exactly those in flight: no mark was pending
        assert f"{readers - first + connections} sent, 0 failed" in out.decode()
