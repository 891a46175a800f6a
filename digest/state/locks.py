"""Exclusive locks on the state: a file lock for SQLite, an advisory lock for PostgreSQL
(so it also holds across machines). Two are used: one publisher at a time, and one
daemon at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import StateError
from digest.fsutil import storage_error

if TYPE_CHECKING:  # SQLAlchemy loads where a PostgreSQL lock is taken (state/glance.py
    # asks who holds the daemon's lock without it)
    from sqlalchemy import Engine


@dataclass(frozen=True)
class LockKind:
    file_name: str  # under state_dir, for SQLite
    pg_key: int  # advisory lock id, for PostgreSQL
    busy: str  # what "held" means, for the error message
    hint: str


PUBLISH = LockKind(
    "digest.lock", 0x6469_6765, "another digest process is publishing", "wait, or use --wait"
)
DAEMON = LockKind(
    "daemon.lock",
    0x6469_6766,
    "a digest daemon is already running on this state",
    "stop it first (systemctl stop digest, or kill that pid)",
)


def holder_name() -> str:
    """This process, as a lock names its holder."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


# who holds the advisory lock :k, by the application name its connection set
PG_HOLDER = (
    "SELECT a.application_name FROM pg_locks l "
    "JOIN pg_stat_activity a USING (pid) "
    "WHERE l.locktype = 'advisory' AND l.objid = :k AND l.granted LIMIT 1"
)


@contextlib.contextmanager
def hold(kind: LockKind, engine: Engine, state_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock; wait up to `wait` seconds for it, else raise StateError naming the
    holder."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(kind, engine, wait):
            yield
    else:
        with _file_lock(kind, state_dir / kind.file_name, wait):
            yield


def publish_lock(
    engine: Engine, state_dir: Path, *, wait: float = 0.0
) -> contextlib.AbstractContextManager[None]:
    return hold(PUBLISH, engine, state_dir, wait=wait)


def holder(kind: LockKind, engine: Engine, state_dir: Path) -> str | None:
    """Who holds the lock now ("pid 12 on host"), or None when it is free. Asking
    writes and creates nothing (a lock file that does not exist is free), so it answers
    on a full disk or a read-only folder too."""
    if engine.dialect.name != "postgresql":
        return file_holder(kind, state_dir)
    try:
        with hold(kind, engine, state_dir):
            return None
    except StateError as exc:
        return getattr(exc, "holder", None) or "another process"


def daemon_holder(engine: Engine, state_dir: Path) -> str | None:
    """Who runs the daemon on this state (None: nobody)."""
    return holder(DAEMON, engine, state_dir)


def file_holder(kind: LockKind, state_dir: Path) -> str | None:
    """Who holds the file lock `kind` under `state_dir` (None: free or never taken)."""
    path = state_dir / kind.file_name
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(path, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _file_lock(kind: LockKind, path: Path, wait: float) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise storage_error(path, exc) from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    who = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown pid"
                    err = StateError(f"{kind.busy} ({who}; lock {path})", hint=kind.hint)
                    err.holder = who  # type: ignore[attr-defined]
                    raise err from None
                time.sleep(0.1)
        with contextlib.suppress(OSError):  # who holds it is only informative
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder_name().encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _pg_lock(kind: LockKind, engine: Engine, wait: float) -> Iterator[None]:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    with engine.connect() as conn:
        name = f"digest {holder_name()}"[:63]
        conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": name})
        deadline = time.monotonic() + wait
        take = text("SELECT pg_try_advisory_lock(:k)")
        while not conn.execute(take, {"k": kind.pg_key}).scalar():
            if time.monotonic() >= deadline:
                who = conn.execute(text(PG_HOLDER), {"k": kind.pg_key}).scalar()
                who = (who or "").removeprefix("digest ") or None
                err = StateError(f"{kind.busy} ({who or 'advisory lock held'})", hint=kind.hint)
                err.holder = who or "another process"  # type: ignore[attr-defined]
                raise err
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            # a session lock ends with its connection: when the server went away first
            # (the compose stack stopping PostgreSQL before the daemon), there is
            # nothing left to unlock, and no reason to end with a traceback
            with contextlib.suppress(OperationalError):
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": kind.pg_key})
                conn.commit()
