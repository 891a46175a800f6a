"""Real SMTP servers in the test process (aiosmtpd), and the handlers they run.

Handlers never sleep to simulate a slow or stuck server: they wait on an
``asyncio.Event`` that the test sets (from its own thread, through ``release``), so
a test decides what happens when, whatever the machine's load.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import ClassVar, TypeVar

from aiosmtpd.controller import Controller

from tests.support.net import free_port
from tests.support.waiting import HANG

H = TypeVar("H")


@contextmanager
def running_smtp(handler: H) -> Iterator[tuple[Controller, H]]:
    """A real SMTP server (aiosmtpd) on a free port for the duration of the block."""
    # Controller(port=0) would fail its own readiness check; the default readiness
    # deadline (5 s) is too short on a busy machine.
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=HANG)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def release(controller: Controller, event: asyncio.Event) -> None:
    """Set an event that the server's handlers wait on, from the test's thread."""
    controller.loop.call_soon_threadsafe(event.set)


class Recorder:
    """Keeps every accepted message, parsed back, and when (``time.time()``) its data
    arrived."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.received: list[float] = []
        self.senders: list[str] = []  # MAIL FROM of each message, in the same order

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.received.append(time.time())
        self.senders.append(envelope.mail_from)
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


class FaultyServer:
    """``script[address]`` lists what to do at each attempt for that recipient: "ok",
    "421", "451", "550", "drop" (close the connection after the data, before
    answering) or "stall" (never answer RCPT: the client must time out and hang up)."""

    REPLIES: ClassVar[dict[str, str]] = {
        "421": "421 4.3.2 try again later",
        "451": "451 4.7.1 greylisted",
        "550": "550 5.1.1 no such user",
    }

    def __init__(self, delay: float = 0.0) -> None:
        self.script: dict[str, list[str]] = {}
        self.accepted: Counter[str] = Counter()
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # as received, for DKIM
        self.peers: set[object] = set()
        self.stalled = 0  # RCPTs left unanswered
        self.delay = delay  # a pause before each acceptance (benchmarks only)

    def _next(self, address: str, stage: str) -> str:
        steps = self.script.get(address.lower(), [])
        if steps and (steps[0] == "drop") == (stage == "data"):
            return steps.pop(0)
        return "ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        action = self._next(address, "rcpt")
        if action == "stall":
            self.stalled += 1
            await asyncio.sleep(HANG)  # cancelled by aiosmtpd when the client hangs up
            return "451 4.4.2 too slow"
        if action in self.REPLIES:
            return self.REPLIES[action]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay:
            await asyncio.sleep(self.delay)
        (address,) = envelope.rcpt_tos
        if self._next(address, "data") == "drop":
            server.transport.close()
            return "421 4.4.2 connection dropped"
        self.peers.add(session.peer)
        self.accepted[address.lower()] += 1
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.raw.append(envelope.content)
        return "250 2.0.0 accepted"
