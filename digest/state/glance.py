"""The state at a glance, for `digest status`: the counts, the last digest, the live
workers, the scheduled runs and who runs the daemon, read with the database's own driver
(sqlite3 from the standard library, psycopg for PostgreSQL) and plain SQL, without
SQLAlchemy, so that the command starts at once.

`glance` opens the state itself and answers only for a state already at the newest
schema; anything else (no state, another driver, an older schema, a file it cannot
read) answers None, and the caller takes the ordinary way (`db.open_state`: it migrates,
opens a damaged or unwritable state read-only, or says what is wrong in one line). The
same queries serve that way too (`read`, over the engine's driver connection), so
there is one reading of each fact. Also here, because they must stay as light: the URL
of the state (parsed as SQLAlchemy parses it) and the newest migration's revision.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from digest.state import locks
from digest.state.states import DumpStatus

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_S = 30  # as state.db: how long a read waits for another writer's lock


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


# the state's URL ---------------------------------------------------------------------

# SQLAlchemy's own pattern (sqlalchemy/engine/url.py, _parse_url), so that both read a
# URL alike; tests/test_cli_start_up.py compares the two.
_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
    """,
    re.X,
)


@dataclass(frozen=True)
class Url:
    drivername: str
    username: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None
    query: tuple[tuple[str, str], ...]

    @property
    def backend(self) -> str:
        return self.drivername.partition("+")[0]

    def shown(self) -> str:
        """The URL without its password (as SQLAlchemy renders it)."""
        s = self.drivername + "://"
        if self.username is not None:
            s += quote(self.username, safe=" +")
            if self.password is not None:
                s += ":***"
            s += "@"
        if self.host is not None:
            s += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            s += f":{self.port}"
        if self.database is not None:
            s += "/" + quote(self.database, safe=" +/")
        if self.query:
            s += "?" + "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(self.query))
        return s


def parse_url(url: str) -> Url | None:
    """The parts of a database URL, as SQLAlchemy reads them; None when it cannot."""
    m = _URL.match(url)
    if m is None:
        return None
    parts = m.groupdict()
    try:
        port = int(parts["port"]) if parts["port"] else None
    except ValueError:
        return None
    text = {k: unquote(parts[k]) if parts[k] is not None else None for k in parts}
    query = tuple(parse_qsl(parts["query"])) if parts["query"] is not None else ()
    return Url(
        parts["name"],
        text["username"],
        text["password"],
        parts["ipv4host"] or parts["ipv6host"],
        port,
        text["database"],
        query,
    )


def exists(url: str) -> bool:
    """Whether the database at `url` exists: an SQLite file is only there once created; a
    server database (PostgreSQL) is taken to exist."""
    parsed = parse_url(url)
    if parsed is None:
        return False
    if parsed.backend != "sqlite":
        return True
    database = parsed.database or ":memory:"
    return database != ":memory:" and Path(database).is_file()


# the schema's newest revision ----------------------------------------------------------

_REVISION = re.compile(r"^revision\b[^=]*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=]*=\s*(.+)$", re.M)


@functools.cache
def head_revision() -> str:
    """The newest migration's revision id, read from the migration files without
    importing Alembic; "" when there is not exactly one (Alembic then decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return ""
        revisions.add(revision.group(1))
        parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else ""


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


def connect(url: str) -> tuple[Any, str] | None:
    """A new driver connection to the existing state at `url` and its dialect: sqlite3
    (read-write, never creating the file, in autocommit mode: the caller says BEGIN) or
    psycopg; None when the ordinary way must open it (see the module's docstring). The
    schema is not checked here: `at_head`, in the caller's transaction."""
    parsed = parse_url(url)
    if parsed is None:
        return None
    if parsed.backend == "sqlite":
        if parsed.query or not parsed.database or not exists(url):
            return None
        import sqlite3

        uri = f"file:{quote(str(Path(parsed.database).resolve()))}?mode=rw"
        try:
            return sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
            ), "sqlite"
        except sqlite3.Error:
            return None
    options = _pg_options(parsed)
    if options is None:
        return None
    import psycopg

    try:
        return psycopg.connect(**options), "postgresql"
    except psycopg.Error:
        return None


def _pg_options(url: Url) -> dict[str, Any] | None:
    """psycopg's connection options for `url`, as SQLAlchemy would pass them; None when
    this is no psycopg URL psycopg alone reads alike (another driver, several hosts, a
    repeated option) or psycopg is not installed."""
    if url.drivername != "postgresql+psycopg":
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None
    query = dict(url.query)
    if len(query) != len(url.query) or (url.host and "," in url.host):
        return None  # several hosts, a repeated option: as SQLAlchemy would do it
    names = {"host": url.host, "port": url.port, "user": url.username}
    names |= {"password": url.password, "dbname": url.database}
    return {k: v for k, v in names.items() if v is not None} | query


def _postgresql(url: Url, now: datetime, lease: float) -> Glance | None:
    options = _pg_options(url)
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


def at_head(conn: Any, dialect: str) -> bool:
    """Whether the state on `conn` is at the newest schema (PostgreSQL: a failed look
    is rolled back)."""
    head = head_revision()
    if not head:
        return False
    try:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except Exception:  # no such table: a state older than Alembic, or not ours
        if dialect == "postgresql":
            conn.rollback()
        return False
    return [tuple(row) for row in rows] == [(head,)]


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
