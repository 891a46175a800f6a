"""Reading dump files into a ledger of the dumps already read (the state's, given by the
caller): each file once (by content hash), a bad one recorded as failed with its reason
while the others carry on.

Only regular files directly inside the dumps folder are read: a symbolic link (or a
FIFO, a socket, a device) is reported by its quoted name and skipped, and each file is
opened with O_NOFOLLOW so that one swapped for a link after the scan is not followed."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Protocol

from digest.errors import ConfigError, DumpError, printable, quoted
from digest.ingest.parse import Listing, parse_bytes

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


class DumpStatus(StrEnum):
    """A dump file: read into papers, or not readable (with its reason). KNOWN is never
    stored: it reports a file whose content was read before."""

    INGESTED = "ingested"
    FAILED = "failed"
    KNOWN = "known"
    REFUSED = "refused"  # never stored: not a regular file (a symbolic link, a FIFO)
    WAITING = "waiting"  # never stored: modified within schedule.settle_seconds


@dataclass(frozen=True)
class Recorded:
    """What recording a listing stored: its papers, and how many of them were new."""

    papers: int
    new_papers: int


class Ledger(Protocol):
    """The dumps already read, and where a new one is recorded (the state's papers
    repository is one); the caller commits."""

    def known_file(self, path: str, size: int, mtime_ns: int) -> bool: ...
    def known_dump(self, content_hash: str) -> bool: ...
    def remember_mtime(self, content_hash: str, path: str, mtime_ns: int) -> None: ...
    def grown_from(self, path: str, data: bytes) -> int | None: ...
    def record_failed_dump(
        self, path: str, content_hash: str, size: int, error: str, mtime_ns: int | None
    ) -> None: ...
    def record_growth(
        self, dump_id: int, listing: Listing, size: int, mtime_ns: int | None
    ) -> Recorded: ...
    def record_listing(self, listing: Listing, size: int, mtime_ns: int | None) -> Recorded: ...


@dataclass(frozen=True)
class DumpReport:
    path: str
    # KNOWN: read before; REFUSED: not a regular file; WAITING: still being written
    status: DumpStatus
    papers: int = 0
    new_papers: int = 0
    error: str = ""
    warnings: tuple[str, ...] = ()


@dataclass
class IngestReport:
    dumps: list[DumpReport] = field(default_factory=list)

    @property
    def fresh(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status in (DumpStatus.INGESTED, DumpStatus.FAILED)]

    @property
    def refused(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.REFUSED]

    @property
    def failed(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.FAILED]

    @property
    def waiting(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.WAITING]

    @property
    def new_papers(self) -> int:
        return sum(d.new_papers for d in self.dumps)


def dump_candidates(folder: Path) -> list[Path]:
    """Files in the dumps folder that are ready to read (no dotfiles or partial names)."""
    return scan(folder)[0]


def scan(folder: Path) -> tuple[list[Path], list[DumpReport]]:
    """(regular files to read, reports of the entries refused) in the dumps folder.
    Dotfiles, partial names and sub-folders are passed over silently."""
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: dumps folder does not exist", hint="create it or set digest.dumps_dir"
        )
    files, refused = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or entry.name.endswith(IGNORED_SUFFIXES):
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue  # gone since the listing
            path = folder / entry.name
            if stat.S_ISREG(mode):
                files.append(path)
            elif not stat.S_ISDIR(mode):
                refused.append(
                    DumpReport(str(path), DumpStatus.REFUSED, error=_refusal(entry.name, mode))
                )
    return sorted(files), sorted(refused, key=lambda r: r.path)


def _refusal(name: str, mode: int) -> str:
    kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"
    return f"{quoted(name)}: {kind}, not read; only regular files in the dumps folder are read"


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


def read_dump(path: str | os.PathLike[str], max_bytes: int | None = None) -> tuple[bytes, datetime]:
    """The bytes and mtime of a dump file, never through a symbolic link (O_NOFOLLOW);
    DumpError (one line) for what is not a readable regular file (a link, a folder, a
    FIFO that would block, a missing file), or for one over ``max_bytes`` (at most that
    many bytes and one more are read, however much the file grew since it was listed)."""
    name = os.fspath(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise DumpError(name, "file not found") from None
    except PermissionError:
        raise DumpError(name, "permission denied", hint="check the file's permissions") from None
    except OSError as err:
        if os.path.islink(name):
            raise DumpError(name, "is a symbolic link; only regular files are read") from None
        raise DumpError(name, f"cannot read: {err.strerror or err}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DumpError(name, "is a directory, not a dump file")
        raise DumpError(name, "is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read() if max_bytes is None else _read_at_most(handle, max_bytes + 1)
        except OSError as err:
            raise DumpError(name, f"cannot read: {err.strerror or err}") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise DumpError(name, _over_limit(max_bytes), hint=_LIMIT_HINT)
    return data, datetime.fromtimestamp(info.st_mtime).astimezone()


def _read_at_most(handle: BinaryIO, limit: int, chunk: int = 1 << 20) -> bytes:
    """Up to ``limit`` bytes, read a chunk at a time (one read(limit) would allocate the
    whole limit up front, however small the file)."""
    parts, size = [], 0
    while size < limit:
        part = handle.read(min(chunk, limit - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


_LIMIT_HINT = "split the file, or raise digest.max_dump_bytes if it is a real dump"


def _over_limit(max_bytes: int, size: int | None = None) -> str:
    what = f"{size:,} bytes, over" if size is not None else "over"
    return f"{what} digest.max_dump_bytes = {max_bytes:,}; it was not read"


def parse_dump(path: str | os.PathLike[str]) -> Listing:
    """Read and parse one file; the listing year comes from the file's mtime."""
    data, mtime = read_dump(path)
    return parse_bytes(data, name=os.fspath(path), mtime=mtime)


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
    report = ingest_files(
        ledger, ready, progress, max_bytes=max_bytes, settled_after=settled_after, ahead=ahead
    )
    report.dumps[:0] = refused + waiting
    return report


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


def _mtime_ns(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a regular file, or None (read_dump then says what is wrong)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


def _is_settled(mtime_ns: tuple[int, int] | None, settled_after: float | None) -> bool:
    """Whether a file last modified at ``mtime_ns`` has stayed unchanged long enough to be
    whole (never, when the caller did not say how long that is)."""
    if settled_after is None or mtime_ns is None:
        return False
    return time.time() - mtime_ns[1] / 1e9 >= settled_after


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
        signature = _mtime_ns(path)
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
    settled = _is_settled(mtime_ns, settled_after) and _mtime_ns(path) == mtime_ns
    return parse_bytes(data, name=str(path), mtime=mtime, settled=settled)


def ingest_one(
    ledger: Ledger,
    path: Path,
    max_bytes: int | None = None,
    *,
    settled_after: float | None = None,
    ahead: Parsed | None = None,
) -> DumpReport:
    mtime_ns = _mtime_ns(path)
    if mtime_ns is not None and ledger.known_file(str(path), *mtime_ns):
        return DumpReport(str(path), DumpStatus.KNOWN)  # same name, size, mtime: not re-read
    size = mtime_ns[0] if mtime_ns is not None else 0
    if max_bytes is not None and size > max_bytes:
        refused = DumpError(str(path), _over_limit(max_bytes, size), hint=_LIMIT_HINT)
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
