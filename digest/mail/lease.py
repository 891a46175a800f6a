"""A worker's lease on the deliveries it claimed: a heartbeat thread renews it every
quarter of its length, and the sender threads send only while it holds (by this host's
monotonic clock, which a pause does not stop). A renewal counts only when it began and
committed while the lease still held: after that, rows may have gone to other workers."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable

from digest.state import workers
from digest.state.handles import Tx

log = logging.getLogger(__name__)


class Lease:
    """The lease of one worker run: its worker row, its claim token (the fence), and
    until when (time.monotonic()) the rows it holds are its own."""

    def __init__(
        self,
        begin: Callable[[], contextlib.AbstractContextManager[Tx]],
        seconds: float,
        counts: Callable[[], dict[str, int]],
    ) -> None:
        self._begin, self.seconds, self._counts = begin, seconds, counts
        self.worker_id = 0
        self.token = secrets.token_hex(16)
        self.until = 0.0
        self.lapsed = threading.Event()  # the lease ran out: send nothing more
        self._halt = threading.Event()  # the heartbeat's end
        self._beat: threading.Thread | None = None

    def taken(self, worker_id: int, began: float) -> None:
        """Registered as `worker_id` in a transaction begun at `began`: the lease holds."""
        self.worker_id, self.until = worker_id, began + self.seconds
        self.lapsed.clear()

    def beat(self) -> None:
        """Start the heartbeat thread."""
        self._halt.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        self._beat.start()

    def end(self) -> None:
        """Stop the heartbeat (and wait for it)."""
        self._halt.set()
        if self._beat is not None and self._beat is not threading.current_thread():
            self._beat.join()

    def renewed(self) -> None:
        """A new run under a new claim token (after the lease ran out)."""
        self.token = secrets.token_hex(16)

    def holding(self, now: float) -> bool:
        """Whether the lease still holds; when not, nothing more is sent."""
        if now < self.until:
            return True
        self.lapsed.set()
        return False

    def lost(self) -> None:
        """A row was found taken by another worker: the lease is gone."""
        self.until = 0.0
        self.holding(time.monotonic())

    def _heartbeat(self) -> None:
        every = max(0.2, self.seconds / 4)
        while not self._halt.wait(every):
            began = time.monotonic()
            if not self.holding(began):
                return
            try:
                counts = self._counts()
                with self._begin() as conn:
                    workers.beat(conn, self.worker_id, self.token, counts)
                    released = workers.reap(conn, self.seconds)
                if not self.holding(time.monotonic()):
                    return
                self.until = began + self.seconds
                if released:
                    log.warning(
                        "%d deliveries held by a worker that stopped go back to pending",
                        released,
                    )
            except Exception as exc:  # the next beat tries again; the lease is long
                log.warning("worker heartbeat failed: %s", exc)
