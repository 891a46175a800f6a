"""What the daemon needs of the state, as calls: its exclusive locks (one publisher at a
time, one daemon per state), the scheduler's job store, the last ingest and the small
notes it keeps between runs (the stale-source alert)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from digest.state import db, locks, meta, store

if TYPE_CHECKING:
    from digest.app.wiring import App


def publish_lock(app: App, *, wait: float = 0.0) -> AbstractContextManager[None]:
    """Hold the publish lock; wait up to `wait` seconds (StateError naming the holder)."""
    return locks.publish_lock(app.database.engine, app.settings.state_dir, wait=wait)


def daemon_lock(app: App) -> AbstractContextManager[None]:
    """Hold the one-daemon-per-state lock (StateError naming the running daemon)."""
    return locks.hold(locks.DAEMON, app.database.engine, app.settings.state_dir)


def job_store(app: App) -> Any:
    """The scheduler's job store, in the state (its missed runs survive a restart)."""
    return db.job_store(app.database)


def last_ingest(app: App) -> datetime | None:
    """When a dump was last ingested (None: never)."""
    with app.session() as session:
        return meta.last_ingest(session)


def note(app: App, key: str) -> str | None:
    """A note the daemon keeps in the state (None: not set)."""
    with app.session() as session:
        return store.get_meta(session, key)


def set_note(app: App, key: str, value: str | None) -> None:
    """Set (or, with None, clear) a note; read-then-write, under the write lock."""
    with app.database.tx() as session:
        store.set_meta(session, key, value)
