"""One publisher at a time: an exclusive lock on the state (a file lock for SQLite,
an advisory lock for PostgreSQL, so it also holds across machines)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

from .errors import StateError

PG_LOCK_ID = 0x6469_6765  # "dige"


@contextlib.contextmanager
def publish_lock(engine: Engine, state_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the publish lock; wait up to `wait` seconds for it, else raise StateError."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine, wait):
            yield
    else:
        with _file_lock(state_dir / "digest.lock", wait):
            yield


@contextlib.contextmanager
def _file_lock(path: Path, wait: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise StateError(
                        f"{path}: another digest process (pid {holder}) is publishing",
                        hint="wait for it to finish, or stop the daemon",
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _pg_lock(engine: Engine, wait: float) -> Iterator[None]:
    with engine.connect() as conn:
        deadline = time.monotonic() + wait
        while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": PG_LOCK_ID}).scalar():
            if time.monotonic() >= deadline:
                raise StateError(
                    "another digest process is publishing (PostgreSQL advisory lock held)",
                    hint="wait for it to finish, or stop the daemon",
                )
            time.sleep(0.2)
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_ID})
            conn.commit()
