"""Ingesting: dump files read into the ledger of the dumps already read (the state's,
given by the caller), each file once (by content hash), a bad one recorded as failed
with its reason while the others carry on, a grown one recorded as the same dump.

`read_ahead` parses before the write lock is taken; `ingest_folder` and `ingest_files`
then record, each file through `ingest_one`. Reading the folder safely is `folder`,
the settle rule `settle`, the ledger and the reports `ledger`.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.errors import DumpError, printable
from digest.ingest.folder import LIMIT_HINT, over_limit, read_dump, scan, size_and_mtime
from digest.ingest.ledger import DumpReport, DumpStatus, IngestReport, Ledger
from digest.ingest.parse import Listing, parse_bytes
from digest.ingest.settle import is_settled, split_settled

__all__ = ["Parsed", "ingest_files", "ingest_folder", "ingest_one", "read_ahead"]

log = logging.getLogger(__name__)


def ingest_files(
    ledger: Ledger,
    files: Sequence[Path],
    progress: Callable[[str, int, int, str], None] | None = None,
    *,
    max_bytes: int | None = None,
    settled_after: float | None = None,
    ahead: Mapping[Path, Parsed] | None = None,
) -> IngestReport:
    """Ingest the files in order, one report line each; the caller commits. A file over
    `max_bytes` is refused unread (and not recorded: raising the limit lets it in). A
    file last modified at least `settled_after` seconds ago is settled: read whole. What
    `read_ahead` parsed (`ahead`) is not parsed again."""
    report = IngestReport()
    ahead = ahead or {}
    for i, path in enumerate(files):
        if progress:
            progress("Ingesting", i, len(files), path.name)
        report.dumps.append(
            ingest_one(ledger, path, max_bytes, settled_after=settled_after, ahead=ahead.get(path))
        )
    if progress:
        progress("Ingesting", len(files), len(files), "")
    return report


def ingest_folder(
    ledger: Ledger,
    folder: Path,
    progress: Callable[[str, int, int, str], None] | None = None,
    *,
    settle: float = 0.0,
    now: float | None = None,
    max_bytes: int | None = None,
    settled_after: float | None = None,
    ahead: Mapping[Path, Parsed] | None = None,
) -> IngestReport:
    """Ingest every regular file of the dumps folder that has settled: one modified in
    the last ``settle`` seconds may still be being written, so it waits for a later run
    (status "waiting"), as the daemon's watcher does. Each entry refused is in the
    report (status "refused") with its quoted name."""
    files, refused = scan(folder)
    now = time.time() if now is None else now
    ready, waiting = split_settled(files, settle, now)
    report = ingest_files(
        ledger, ready, progress, max_bytes=max_bytes, settled_after=settled_after, ahead=ahead
    )
    report.dumps[:0] = refused + waiting
    return report


@dataclass(frozen=True)
class Parsed:
    """A dump file read and parsed ahead (see read_ahead): its (size, mtime) then, its
    bytes, and its listing or the reason it has none."""

    signature: tuple[int, int]
    data: bytes
    mtime: datetime
    listing: Listing | None
    error: DumpError | None

    def result(self) -> Listing:
        if self.listing is None:
            assert self.error is not None
            raise self.error
        return self.listing


def read_ahead(
    ledger: Ledger,
    files: Sequence[Path],
    progress: Callable[[str, int, int, str], None] | None = None,
    *,
    max_bytes: int | None = None,
    settled_after: float | None = None,
) -> dict[Path, Parsed]:
    """Read and parse each file that ingest_one would parse (not known by name, size and
    mtime, nor by content; within ``max_bytes``) with only reads of the state. Call it
    before taking the write lock and pass the result on as ``ahead``: parsing, the slow
    part of ingesting, then never holds the lock that other writers wait for."""
    ahead = {}
    for i, path in enumerate(files):
        if progress:
            progress("Reading", i, len(files), path.name)
        signature = size_and_mtime(path)
        if signature is None or ledger.known_file(str(path), *signature):
            continue
        if max_bytes is not None and signature[0] > max_bytes:
            continue  # refused unread by ingest_one
        try:
            data, mtime = read_dump(path, max_bytes)
        except DumpError:
            continue  # ingest_one reads it again and says why
        if ledger.known_dump(hashlib.sha256(data).hexdigest()):
            continue
        try:
            listing, error = _parse(path, data, mtime, signature, settled_after), None
        except DumpError as exc:
            listing, error = None, exc
        ahead[path] = Parsed(signature, data, mtime, listing, error)
    return ahead


def _parse(
    path: Path,
    data: bytes,
    mtime: datetime,
    mtime_ns: tuple[int, int] | None,
    settled_after: float | None,
) -> Listing:
    settled = is_settled(mtime_ns, settled_after) and size_and_mtime(path) == mtime_ns
    return parse_bytes(data, name=str(path), mtime=mtime, settled=settled)


def ingest_one(
    ledger: Ledger,
    path: Path,
    max_bytes: int | None = None,
    *,
    settled_after: float | None = None,
    ahead: Parsed | None = None,
) -> DumpReport:
    mtime_ns = size_and_mtime(path)
    if mtime_ns is not None and ledger.known_file(str(path), *mtime_ns):
        return DumpReport(str(path), DumpStatus.KNOWN)  # same name, size, mtime: not re-read
    size = mtime_ns[0] if mtime_ns is not None else 0
    if max_bytes is not None and size > max_bytes:
        refused = DumpError(str(path), over_limit(max_bytes, size), hint=LIMIT_HINT)
        log.warning("%s", refused)
        return DumpReport(str(path), DumpStatus.FAILED, error=str(refused))
    pre = ahead if ahead is not None and ahead.signature == mtime_ns else None
    try:
        data, mtime = (pre.data, pre.mtime) if pre else read_dump(path, max_bytes)
    except DumpError as err:
        log.warning("%s", err)
        return DumpReport(str(path), DumpStatus.FAILED, error=str(err))
    digest = hashlib.sha256(data).hexdigest()
    if ledger.known_dump(digest):
        if mtime_ns is not None:
            ledger.remember_mtime(digest, str(path), mtime_ns[1])
        return DumpReport(str(path), DumpStatus.KNOWN)
    earlier = ledger.grown_from(str(path), data)
    try:
        listing = pre.result() if pre else _parse(path, data, mtime, mtime_ns, settled_after)
    except DumpError as exc:
        log.warning("%s", exc)
        if earlier is None:
            when = mtime_ns[1] if mtime_ns else None
            ledger.record_failed_dump(str(path), digest, len(data), str(exc), when)
        return DumpReport(str(path), DumpStatus.FAILED, error=str(exc))
    for warning in listing.warnings:
        log.warning("%s", warning)
    when = mtime_ns[1] if mtime_ns else None
    if earlier is not None:  # the same dump, grown since it was read: one row, no repeats
        outcome = ledger.record_growth(earlier, listing, len(data), when)
    else:
        outcome = ledger.record_listing(listing, len(data), when)
    name = printable(path.name)
    log.info("ingested %s: %d papers, %d new", name, outcome.papers, outcome.new_papers)
    return DumpReport(
        str(path),
        DumpStatus.INGESTED,
        outcome.papers,
        outcome.new_papers,
        warnings=tuple(listing.warnings),
    )
