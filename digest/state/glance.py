"""The state at a glance, for `digest status`: the counts, the last digest, the live
workers, the scheduled runs and who runs the daemon, read with the database's own driver
(sqlite3 from the standard library, psycopg for PostgreSQL) and plain SQL, without
SQLAlchemy, so that the command starts at once.

`glance` opens the state itself and answers only for a state already at the newest
schema; anything else (no state, another driver, an older schema, a file it cannot
read) answers None, and the caller takes the ordinary way (`db.open_state`: it migrates,
opens a damaged or unwritable state read-only, or says what is wrong in one line). The
same queries serve that way too (`read`, over the engine's driver connection), so
there is one reading of each fact. The state's URL, the newest migration and the
driver's connection come from driver.py, as light.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from digest.state import locks
from digest.state.driver import BUSY_TIMEOUT_S, Url, at_head, exists, parse_url, pg_options
from digest.state.states import DumpStatus


@dataclass(frozen=True)
class Status:
    papers_seen: int
    papers_pending: int
    papers_sent: int
    dumps_ingested: int
    dumps_failed: int
    failed: list[tuple[str, str]]  # (path, error) of the most recent failures
    last_issue: int | None
    last_subject: str | None
    last_published_at: datetime | None
    last_listing_date: date | None
    deliveries: dict[str, int]  # status -> count, for the last digest


@dataclass(frozen=True)
class WorkerInfo:
    """One live worker, for `digest status`."""

    id: int
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    sent: int
    failed: int
    deferred: int


@dataclass(frozen=True)
class ScheduledRun:
    job: str
    at: datetime


@dataclass(frozen=True)
class Glance:
    """Everything `digest status` shows of the state."""

    status: Status
    daemon: str | None  # who runs the daemon ("pid … on host"), None: nobody
    runs: list[ScheduledRun]  # the daemon's scheduled runs, the next first
    workers: list[WorkerInfo]


# reading -------------------------------------------------------------------------------


def glance(url: str, state_dir: Path, now: datetime, lease: float) -> Glance | None:
    """What `digest status` shows, read with the driver alone; None when the ordinary way
    must answer (see the module's docstring). No state yet: all zero, nothing created."""
    parsed = parse_url(url)
    if parsed is None:
        return None
    if parsed.backend == "sqlite" and not exists(url):
        empty = Status(0, 0, 0, 0, 0, [], None, None, None, None, {})
        return Glance(empty, None, [], [])
    if parsed.backend == "sqlite" and not parsed.query and parsed.database:
        return _sqlite(Path(parsed.database), state_dir, now, lease)
    if parsed.drivername == "postgresql+psycopg":
        return _postgresql(parsed, now, lease)
    return None


def _sqlite(path: Path, state_dir: Path, now: datetime, lease: float) -> Glance | None:
    import sqlite3

    uri = f"file:{quote(str(path.resolve()))}?mode=rw"  # never creates the file
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("BEGIN")  # one snapshot for every count
        if not at_head(conn, "sqlite"):
            return None
        status, runs, workers = read(conn, "sqlite", now, lease)
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return Glance(status, locks.file_holder(locks.DAEMON, state_dir), runs, workers)


def _postgresql(url: Url, now: datetime, lease: float) -> Glance | None:
    options = pg_options(url)
    if options is None:
        return None
    import psycopg

    try:
        with psycopg.connect(**options) as conn:
            holder = _pg_holder(conn)
            if not at_head(conn, "postgresql"):
                return None
            status, runs, workers = read(conn, "postgresql", now, lease)
            conn.rollback()
    except psycopg.Error:
        return None
    return Glance(status, holder, runs, workers)


def _pg_holder(conn: Any) -> str | None:
    """Who holds the daemon's advisory lock (see locks.py), asked by taking it at once."""
    key = locks.DAEMON.pg_key
    conn.execute("SELECT set_config('application_name', %s, false)", (locks.holder_name(),))
    if conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        conn.commit()
        return None
    row = conn.execute(locks.PG_HOLDER.replace(":k", "%s"), (key,)).fetchone()
    conn.commit()
    who = (row[0] if row else "") or ""
    return who.removeprefix("digest ") or "another process"


def read(
    conn: Any, dialect: str, now: datetime, lease: float
) -> tuple[Status, list[ScheduledRun], list[WorkerInfo]]:
    """The status, the scheduled runs and the live workers, from a DB-API connection
    (sqlite3 or psycopg) in an open transaction."""
    return status(conn, dialect), scheduled_runs(conn, dialect), workers(conn, dialect, now, lease)


def _rows(conn: Any, dialect: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql.replace("?", "%s") if dialect == "postgresql" else sql, params)
        return [tuple(row) for row in cur.fetchall()]
    finally:
        cur.close()


def status(conn: Any, dialect: str) -> Status:
    """The counts and the last digest (all zero in an empty state)."""
    seen = _rows(conn, dialect, "SELECT count(*) FROM papers")[0][0]
    sent = _rows(conn, dialect, "SELECT count(*) FROM digest_items")[0][0]
    dumps = dict(_rows(conn, dialect, "SELECT status, count(*) FROM dump_files GROUP BY status"))
    failed = _rows(
        conn,
        dialect,
        "SELECT path, error FROM dump_files WHERE status = ? ORDER BY id DESC LIMIT 5",
        str(DumpStatus.FAILED),
    )
    last = _rows(
        conn,
        dialect,
        "SELECT id, issue, subject, published_at FROM digests ORDER BY issue DESC LIMIT 1",
    )
    deliveries: dict[str, int] = {}
    if last:
        deliveries = dict(
            _rows(
                conn,
                dialect,
                "SELECT status, count(*) FROM deliveries WHERE digest_id = ? GROUP BY status",
                last[0][0],
            )
        )
    listing = _rows(conn, dialect, "SELECT max(listing_date) FROM dump_files")[0][0]
    return Status(
        papers_seen=seen,
        papers_pending=seen - sent,
        papers_sent=sent,
        dumps_ingested=dumps.get(DumpStatus.INGESTED, 0),
        dumps_failed=dumps.get(DumpStatus.FAILED, 0),
        failed=[(p, e or "") for p, e in failed],
        last_issue=last[0][1] if last else None,
        last_subject=last[0][2] if last else None,
        last_published_at=_moment(last[0][3]) if last else None,
        last_listing_date=date.fromisoformat(listing) if isinstance(listing, str) else listing,
        deliveries=deliveries,
    )


def scheduled_runs(conn: Any, dialect: str) -> list[ScheduledRun]:
    """The scheduler's stored jobs with a next run, soonest first."""
    rows = _rows(
        conn,
        dialect,
        "SELECT id, next_run_time FROM apscheduler_jobs "
        "WHERE next_run_time IS NOT NULL ORDER BY next_run_time",
    )
    return [ScheduledRun(job, datetime.fromtimestamp(ts, UTC)) for job, ts in rows]


def workers(conn: Any, dialect: str, now: datetime, lease: float) -> list[WorkerInfo]:
    """The workers whose heartbeat is fresher than `lease` seconds before `now`."""
    cutoff = (now - timedelta(seconds=lease)).astimezone(UTC)
    rows = _rows(
        conn,
        dialect,
        "SELECT id, host, pid, started_at, heartbeat_at, sent, failed, deferred "
        "FROM workers WHERE heartbeat_at >= ? ORDER BY id",
        # SQLite holds UTC as text, the way SQLAlchemy writes it (state.models.UTCDateTime)
        cutoff.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        if dialect == "sqlite"
        else cutoff,
    )
    return [
        WorkerInfo(i, host, pid, _moment(started), _moment(beat), s, f, d)  # type: ignore[arg-type]
        for i, host, pid, started, beat, s, f, d in rows
    ]


def _moment(value: datetime | str | None) -> datetime | None:
    """A stored moment as a timezone-aware UTC datetime (SQLite: text without a zone)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
