"""Inspecting: the state as it is (status), the live delivery workers, the archive's
search. Reads only: nothing here creates the state. What `digest status` shows is read
first with the database's driver alone (`glance`, state/glance.py: no ORM to import);
`overview` is the ordinary way, through the state's sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.state.archive import Hit
    from digest.state.glance import Glance, ScheduledRun, Status, WorkerInfo


def glance(app: App) -> Glance | None:
    """What `digest status` shows, read without SQLAlchemy; None when the state needs the
    ordinary way (`overview`): not at the newest schema, unreadable, another driver."""
    from digest.state import glance as light

    s = app.settings
    return light.glance(s.database_url, s.state_dir, app.clock(), s.email.lease_seconds)


def overview(app: App) -> Glance:
    """What `digest status` shows, through the state's sessions (migrated on first use,
    or read-only: see `make_reader_app`)."""
    from digest.state.glance import Glance

    holder, runs = schedule(app)
    return Glance(status(app), holder, runs, workers(app))


def status(app: App) -> Status:
    """The state as it is (all zero before the first ingest; nothing is created)."""
    from digest.state import store

    with app.reading() as session:
        return store.status(session)


def workers(app: App) -> list[WorkerInfo]:
    """The live delivery workers and their progress."""
    from digest.state import workers as workers_of

    with app.reading() as session:
        return workers_of.listing(session, app.clock(), app.settings.email.lease_seconds)


def search_archive(app: App, query: str) -> list[Hit]:
    """Published papers with every word of ``query`` (the web server's ?q=): one
    statement on a pooled connection, no session."""
    from digest.state import archive

    return archive.find(app.database, query)


def schedule(app: App) -> tuple[str | None, list[ScheduledRun]]:
    """Who holds the daemon lock ("pid … on host", None: no daemon) and the runs it has
    scheduled, the next first. No state, no daemon (nothing is created to find out)."""
    from digest.state import locks, meta

    if not app.has_state():
        return None, []
    holder = locks.daemon_holder(app.database.engine, app.settings.state_dir)
    with app.reading() as session:
        return holder, meta.scheduled_runs(session)
