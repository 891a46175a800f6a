"""The settle rule: a dump file modified within ``schedule.settle_seconds`` may still be
being written, so it waits for a later run; one unchanged for that long is whole, and is
read whole even if its last abstract stops mid-sentence. The parser reads no clock: the
caller says whether a file has settled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from digest.errors import quoted
from digest.ingest.folder import scan
from digest.ingest.ledger import DumpReport, DumpStatus

__all__ = ["is_settled", "split_settled", "wait_until_settled"]


def split_settled(
    files: Sequence[Path], settle: float, now: float
) -> tuple[list[Path], list[DumpReport]]:
    """(the files unchanged for ``settle`` seconds at ``now``, reports of the others:
    status "waiting")."""
    ready, waiting = [], []
    for path in files:
        try:
            age = now - path.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age < settle:
            waiting.append(
                DumpReport(str(path), DumpStatus.WAITING, error=_unsettled(path.name, settle))
            )
        else:
            ready.append(path)
    return ready, waiting


def wait_until_settled(
    folder: Path,
    settle: float,
    notice: Callable[[str], None],
    *,
    patience: float | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """For a one-off run (a person saying "now"): wait until no regular file of the
    dumps folder was modified in the last ``settle`` seconds, saying once per file which
    one and for how long. A file still changing after ``patience`` seconds (default
    ten times the settle time, at least a minute) is left for `ingest_folder` to report
    as waiting. The daemon does not wait: its watcher reads a file once it is complete."""
    if settle <= 0:
        return
    patience = max(60.0, 10 * settle) if patience is None else patience
    start, told = clock(), set()
    while True:
        now = clock()
        young = []
        for path in scan(folder)[0]:
            try:
                age = now - path.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if age < settle:
                young.append((path, age))
        if not young or now - start >= patience:
            return
        for path, age in young:
            if path not in told:
                told.add(path)
                notice(
                    f"{quoted(path.name)} was modified {max(age, 0):.1f} s ago: waiting "
                    f"{settle - max(age, 0):.1f} s (schedule.settle_seconds = {settle:g} s) "
                    "until it is complete, then reading it"
                )
        sleep(max(0.05, min(settle - max(age, 0) for _, age in young)))


def _unsettled(name: str, settle: float) -> str:
    return (
        f"{quoted(name)}: still being written (modified less than "
        f"schedule.settle_seconds = {settle:g} s ago); a later run reads it"
    )


def is_settled(mtime_ns: tuple[int, int] | None, settled_after: float | None) -> bool:
    """Whether a file last modified at ``mtime_ns`` has stayed unchanged long enough to be
    whole (never, when the caller did not say how long that is)."""
    if settled_after is None or mtime_ns is None:
        return False
    return time.time() - mtime_ns[1] / 1e9 >= settled_after
