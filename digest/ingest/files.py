"""Reading dump files into the state: each file once (by content hash), a bad one
recorded as failed with its reason while the others carry on."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from digest.errors import ConfigError, DumpError
from digest.ingest.parse import Listing, parse_bytes
from digest.state import store
from digest.state.states import DumpStatus

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


@dataclass(frozen=True)
class DumpReport:
    path: str
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
        return [d for d in self.dumps if d.status != DumpStatus.KNOWN]

    @property
    def failed(self) -> list[DumpReport]:
        return [d for d in self.dumps if d.status == DumpStatus.FAILED]

    @property
    def new_papers(self) -> int:
        return sum(d.new_papers for d in self.dumps)


def dump_candidates(folder: Path) -> list[Path]:
    """Files in the dumps folder that are ready to read (no dotfiles or partial names)."""
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: dumps folder does not exist", hint="create it or set digest.dumps_dir"
        )
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(IGNORED_SUFFIXES)
    )


def ingest_files(
    session: Session,
    files: Sequence[Path],
    progress: Callable[[str, int, int, str], None] | None = None,
    *,
    max_bytes: int | None = None,
) -> IngestReport:
    """Ingest the files in order, one report line each; the caller commits. A file over
    `max_bytes` is refused unread (and not recorded: raising the limit lets it in)."""
    report = IngestReport()
    for i, path in enumerate(files):
        if progress:
            progress("Ingesting", i, len(files), path.name)
        report.dumps.append(ingest_one(session, path, max_bytes))
    if progress:
        progress("Ingesting", len(files), len(files), "")
    return report


def read_dump(path: str | os.PathLike[str]) -> tuple[bytes, datetime]:
    """The bytes and mtime of a dump file; DumpError (one line) for what is not a
    readable regular file (a folder, a FIFO that would block, a missing file)."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
        if stat.S_ISDIR(info.st_mode):
            raise DumpError(name, "is a directory, not a dump file")
        if not stat.S_ISREG(info.st_mode):
            raise DumpError(name, "is not a regular file")
        with open(name, "rb") as handle:
            info = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError:
        raise DumpError(name, "file not found") from None
    except PermissionError:
        raise DumpError(name, "permission denied", hint="check the file's permissions") from None
    except OSError as err:
        raise DumpError(name, f"cannot read: {err.strerror or err}") from None
    return data, datetime.fromtimestamp(info.st_mtime).astimezone()


def parse_dump(path: str | os.PathLike[str]) -> Listing:
    """Read and parse one file; the listing year comes from the file's mtime."""
    data, mtime = read_dump(path)
    return parse_bytes(data, name=os.fspath(path), mtime=mtime)


def ingest_one(session: Session, path: Path, max_bytes: int | None = None) -> DumpReport:
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0  # reported by the read below
    if max_bytes is not None and size > max_bytes:
        refused = DumpError(
            str(path),
            f"{size:,} bytes, over digest.max_dump_bytes = {max_bytes:,}; it was not read",
            hint="split the file, or raise digest.max_dump_bytes if it is a real dump",
        )
        log.warning("%s", refused)
        return DumpReport(str(path), DumpStatus.FAILED, error=str(refused))
    try:
        data, mtime = read_dump(path)
    except DumpError as err:
        log.warning("%s", err)
        return DumpReport(str(path), DumpStatus.FAILED, error=str(err))
    digest = hashlib.sha256(data).hexdigest()
    if store.known_dump(session, digest) is not None:
        return DumpReport(str(path), DumpStatus.KNOWN)
    try:
        listing = parse_bytes(data, name=str(path), mtime=mtime)
    except DumpError as exc:
        log.warning("%s", exc)
        store.record_failed_dump(session, str(path), digest, len(data), str(exc))
        return DumpReport(str(path), DumpStatus.FAILED, error=str(exc))
    for warning in listing.warnings:
        log.warning("%s", warning)
    outcome = store.record_listing(session, listing, len(data))
    log.info("ingested %s: %d papers, %d new", path.name, outcome.papers, outcome.new_papers)
    return DumpReport(
        str(path),
        DumpStatus.INGESTED,
        outcome.papers,
        outcome.new_papers,
        warnings=tuple(listing.warnings),
    )
