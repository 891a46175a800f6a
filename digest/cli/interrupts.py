"""Ctrl-C and SIGTERM for the commands that deliver: the first asks the run to stop
soon (messages in flight finish, the rest goes back to pending, the summary is
printed, exit 130 or 143); a second stops it at once."""

from __future__ import annotations

import signal
import subprocess
import threading
from types import FrameType, TracebackType
from typing import Any

from rich.console import Console


class Interrupts:
    """Installs the handlers for the block; ``soon`` and ``now`` are what the delivery
    run watches; ``code`` is the exit status a stop should end with (0: no signal)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, console: Console) -> None:
        self.console = console
        self.soon = threading.Event()
        from digest.mail.delivery import Abort

        self.now = Abort()
        self.signum = 0
        self.children: list[subprocess.Popen[Any]] = []
        self._old: dict[int, Any] = {}

    @property
    def code(self) -> int:
        return 128 + self.signum if self.signum else 0

    def __enter__(self) -> Interrupts:
        for sig in self.SIGNALS:
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        for child in self.children:  # workers started by this command stop with it
            if child.poll() is None:
                child.send_signal(signum)
        if not self.soon.is_set():
            self.signum = signum
            self.soon.set()
            self.console.print(
                "stopping: messages in flight finish, the rest stays pending "
                "(interrupt again to stop at once)"
            )
            return
        self.now.set()
        if not self.now.armed:  # not delivering (publishing, say): end the work here
            raise KeyboardInterrupt
