"""The state reached with its database's own driver (sqlite3 from the standard library,
psycopg for PostgreSQL), without SQLAlchemy or Alembic, for the commands that must start
at once (`digest status`, `subscribers list`, `unsubscribe`; see glance.py and
subscriber_glance.py): the state's URL, parsed as SQLAlchemy parses it, whether it
exists, a connection to it, and whether its schema is the newest migration's.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote

MIGRATIONS = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_S = 30  # as state.db: how long a read waits for another writer's lock


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


# the driver's connection -------------------------------------------------------------


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
    options = pg_options(parsed)
    if options is None:
        return None
    import psycopg

    try:
        return psycopg.connect(**options), "postgresql"
    except psycopg.Error:
        return None


def pg_options(url: Url) -> dict[str, Any] | None:
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
