"""Inspecting: the state as it is (status), the live delivery workers, the archive's
search. Reads only: nothing here creates the state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.state import issues, store
from digest.state import workers as workers_of

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.state.meta import ScheduledRun
    from digest.state.workers import WorkerInfo


def status(app: App) -> store.Status:
    """The state as it is (all zero before the first ingest; nothing is created)."""
    with app.reading() as session:
        return store.status(session)


def workers(app: App) -> list[WorkerInfo]:
    """The live delivery workers and their progress."""
    with app.reading() as session:
        return workers_of.listing(session, app.clock(), app.settings.email.lease_seconds)


def search_archive(app: App, query: str) -> list[issues.Hit]:
    """Published papers with every word of ``query`` (the web server's ?q=)."""
    with app.session() as session:
        return issues.search(session, query)


def schedule(app: App) -> tuple[str | None, list[ScheduledRun]]:
    """Who holds the daemon lock ("pid … on host", None: no daemon) and the runs it has
    scheduled, the next first. No state, no daemon (nothing is created to find out)."""
    from digest.state import locks, meta

    if not app.has_state():
        return None, []
    holder = locks.daemon_holder(app.database.engine, app.settings.state_dir)
    with app.reading() as session:
        return holder, meta.scheduled_runs(session)
