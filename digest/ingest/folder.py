"""Reading the dumps folder safely.

Only regular files directly inside the dumps folder are read: dotfiles and partial names
(``.part``, ``.crdownload``…) are passed over, a symbolic link (or a FIFO, a socket, a
device) is reported by its quoted name and skipped, and each file is opened with
O_NOFOLLOW so that one swapped for a link after the scan is not followed. A file over
``digest.max_dump_bytes`` is refused after reading at most that many bytes and one more.
"""

from __future__ import annotations

import os
import stat
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from digest.errors import ConfigError, DumpError, quoted
from digest.ingest.ledger import DumpReport, DumpStatus

__all__ = [
    "IGNORED_SUFFIXES",
    "LIMIT_HINT",
    "over_limit",
    "read_dump",
    "scan",
    "size_and_mtime",
]

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


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
        raise DumpError(name, over_limit(max_bytes), hint=LIMIT_HINT)
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


LIMIT_HINT = "split the file, or raise digest.max_dump_bytes if it is a real dump"


def over_limit(max_bytes: int, size: int | None = None) -> str:
    what = f"{size:,} bytes, over" if size is not None else "over"
    return f"{what} digest.max_dump_bytes = {max_bytes:,}; it was not read"


def size_and_mtime(path: Path) -> tuple[int, int] | None:
    """(size, mtime in ns) of a regular file, or None (read_dump then says what is wrong)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None
