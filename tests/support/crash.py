"""A real `digest send` process against an SMTP server in the test process, killed
mid-send. ``measure_duplicates`` (for tests/bench/bench_crash_window.py) kills it at
random moments, many times, and counts the copies that arrive twice: a message the
server accepted just before the kill, which the database had not yet recorded as sent.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.support.dumps import ROOT, write_dump
from tests.support.smtp import FaultyServer, running_smtp
from tests.support.waiting import HANG, wait_for


class Holding(FaultyServer):
    """Counts the copies of each Message-ID accepted. With ``hold_from`` = n, once n
    messages were accepted every RCPT waits until the test opens ``gate`` (see
    ``tests.support.smtp.release``); ``waiting`` counts the RCPTs held."""

    def __init__(
        self, delay: float = 0.0, hold_from: int | None = None, *, at_data: bool = False
    ) -> None:
        super().__init__(delay=delay)
        self.hold_from = hold_from
        self.at_data = at_data  # hold after accepting a message, before answering it
        self.gate = asyncio.Event()
        self.waiting = 0
        self.ids: Counter[str] = Counter()  # Message-ID -> copies accepted

    async def _hold(self) -> None:
        held = self.hold_from is not None and sum(self.accepted.values()) >= self.hold_from
        if held and not self.gate.is_set():
            self.waiting += 1
            try:
                await self.gate.wait()
            finally:
                self.waiting -= 1

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        if not self.at_data:
            await self._hold()
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            self.ids[self.messages[-1]["Message-ID"]] += 1
            if self.at_data:  # accepted (the server keeps it), the answer not yet sent
                await self._hold()
        return reply


def project(
    folder: Path, port: int, readers: int, connections: int, database_url: str = ""
) -> Path:
    """digest.toml and one five-paper dump in `folder`; `readers` recipients over SMTP
    (the state in SQLite, or in the database at `database_url`)."""
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    write_dump(folder / "dumps" / "0.txt", [(f"Paper {i}", "An abstract. " * 8) for i in range(5)])
    recipients = ", ".join(f'"r{i}@example.org"' for i in range(readers))
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\ndatabase_url = "{database_url}"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        f"smtp_timeout = {HANG}\nconnections = {connections}\nrecipients = [{recipients}]\n"
    )
    return config


def start_send(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "-c", str(config), "send"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill_at_random(handler: Holding, config: Path) -> bool:
    """Start a send, wait for its first accepted message, SIGKILL it a random moment
    later; True when it was still running."""
    before = sum(handler.accepted.values())
    proc = start_send(config)
    wait_for(
        lambda: sum(handler.accepted.values()) > before or proc.poll() is not None,
        "a message",
    )
    time.sleep(random.uniform(0.0, 0.15))  # the random moment is the measurement
    killed = proc.poll() is None
    if killed:
        proc.kill()
    proc.wait()
    return killed


def measure_duplicates(kills: int, readers: int = 200, connections: int = 4) -> dict[str, int]:
    """Kill `digest send` at random moments, `kills` times, publishing a new issue
    whenever one is fully delivered; then finish. Counts messages accepted twice."""
    done = 0
    with (
        running_smtp(Holding(delay=0.002)) as (controller, handler),
        tempfile.TemporaryDirectory() as tmp,
    ):
        config = project(Path(tmp), controller.port, readers, connections)
        for k in range(kills):
            done += kill_at_random(handler, config)
            write_dump(
                Path(tmp) / "dumps" / f"{k + 1}.txt", [(f"Issue paper {k}", "An abstract. " * 9)]
            )
        finish = start_send(config)
        finish.communicate(timeout=600)
        assert finish.returncode == 0
    copies = list(handler.ids.values())
    return {
        "kills_mid_send": done,
        "messages": sum(copies),
        "duplicates": sum(c - 1 for c in copies if c > 1),
    }
