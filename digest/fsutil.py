"""Small file helpers: atomic writes (temp file in the same folder, fsync, os.replace),
and the one place an OSError about a file becomes the core's one-line error."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from digest.errors import StorageError

FULL_BELOW = 64 * 1024  # bytes free under which a file system is called full


def file_system_problem(path: Path) -> str | None:
    """ "full" or "read-only" when the file system holding `path` (or its nearest
    existing parent) is in that state, else None."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return "read-only"
    if st.f_bavail * st.f_frsize < FULL_BELOW:
        return "full"
    return None


def storage_error(path: Path | str, exc: OSError) -> StorageError:
    """The one-line error for an OSError on `path`: what happened and what to do."""
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(
            str(path),
            "no space left on the disk",
            hint="free some space there, then run the command again (nothing stored was lost)",
        )
    if code == errno.EROFS or (
        code in (errno.EACCES, errno.EPERM) and file_system_problem(Path(path)) == "read-only"
    ):
        return StorageError(
            str(path),
            "the folder is on a read-only file system",
            hint="make it writable (or point digest.state_dir elsewhere), then run again",
        )
    if code in (errno.EACCES, errno.EPERM):
        return StorageError(
            str(path),
            "permission denied",
            hint="give this user write access to the folder (or point digest.state_dir "
            "elsewhere), then run again",
        )
    return StorageError(str(path), exc.strerror or str(exc), hint="check the disk and the path")


def atomic_write(path: Path, data: bytes | str, *, mode: int = 0o644) -> bool:
    """Write `data` to `path` atomically; returns False when the file already holds it.
    A failure (full disk, read-only folder) raises StorageError and leaves the old file.
    `mode`: 0o644 for what is published, 0o600 for what is private (an address list)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        if path.read_bytes() == raw:
            return False
    except OSError:
        pass
    try:
        _replace(path, raw, mode)
    except OSError as exc:
        raise storage_error(path, exc) from None
    return True


def _replace(path: Path, raw: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
