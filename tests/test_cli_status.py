"""`digest status` reads the state with the database's driver alone (no SQLAlchemy to
import) and shows exactly what the state holds, on SQLite and PostgreSQL: the counts,
the failed dumps, the last digest and its deliveries, the live workers, the daemon's
next run and who runs it. A state at an older schema is migrated first, as before; a
state's URL is read and shown as SQLAlchemy reads and shows it."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from digest.app import ingesting, inspecting, make_app, publishing
from digest.config import Settings
from digest.program import main
from digest.state import driver, glance, locks
from digest.state import workers as worker_rows
from digest.state.db import alembic_config, make_engine
from digest.state.models import Delivery, Digest, DigestItem, DumpFile, Paper, Worker
from digest.state.states import DumpStatus


def _expected(session: Session, now: datetime, lease: float) -> tuple[glance.Status, list[int]]:
    """The status as the ORM reads it, and the ids of the live workers."""
    seen = session.scalar(select(func.count()).select_from(Paper)) or 0
    sent = session.scalar(select(func.count()).select_from(DigestItem)) or 0
    dumps = dict(
        session.execute(select(DumpFile.status, func.count()).group_by(DumpFile.status)).all()
    )
    failed = session.execute(
        select(DumpFile.path, DumpFile.error)
        .where(DumpFile.status == DumpStatus.FAILED)
        .order_by(DumpFile.id.desc())
        .limit(5)
    ).all()
    last = session.scalars(select(Digest).order_by(Digest.issue.desc())).first()
    assert last is not None
    deliveries = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.digest_id == last.id)
            .group_by(Delivery.status)
        ).all()
    )
    status = glance.Status(
        papers_seen=seen,
        papers_pending=seen - sent,
        papers_sent=sent,
        dumps_ingested=dumps.get(DumpStatus.INGESTED, 0),
        dumps_failed=dumps.get(DumpStatus.FAILED, 0),
        failed=[(p, e or "") for p, e in failed],
        last_issue=last.issue,
        last_subject=last.subject,
        last_published_at=last.published_at,
        last_listing_date=session.scalar(select(func.max(DumpFile.listing_date))),
        deliveries=deliveries,
    )
    return status, list(session.scalars(select(Worker.id).order_by(Worker.id)))


def test_status_without_the_orm_shows_what_the_state_holds(settings: Settings) -> None:
    broken = Path(settings.digest.dumps_dir) / "broken.txt"
    broken.write_bytes(b"\xff\xfe not a dump\x00")
    os.utime(broken, (1e9, 1e9))  # complete long ago: no settling to wait for
    app = make_app(settings)
    ingesting.ingest(app)
    report = publishing.publish(app)
    assert report.issue == 1
    with app.database.tx() as tx:
        worker_id = worker_rows.register(tx)
        tx.execute(
            text(
                "INSERT INTO apscheduler_jobs (id, next_run_time, job_state) "
                "VALUES ('send', 4102444800.5, :state)"
            ),
            {"state": b"\x80"},
        )
    now, lease = datetime.now(UTC), settings.email.lease_seconds
    with app.database.read() as session:
        expected, live = _expected(session, now, lease)
        times = session.execute(
            select(Worker.started_at, Worker.heartbeat_at).where(Worker.id == worker_id)
        ).one()
    assert expected.dumps_failed == 1 and expected.failed[0][1]  # a failure to show
    assert expected.papers_sent > 0 and expected.deliveries == {"pending": 2}
    assert live == [worker_id]

    with locks.hold(locks.DAEMON, app.database.engine, settings.state_dir):
        seen = glance.glance(settings.database_url, settings.state_dir, now, lease)
        ordinary = inspecting.overview(app)
    assert seen is not None
    assert seen.status == expected
    assert seen.status.last_published_at is not None
    assert seen.status.last_published_at.tzinfo is not None
    assert [w.id for w in seen.workers] == live
    assert (seen.workers[0].started_at, seen.workers[0].heartbeat_at) == tuple(times)
    assert seen.runs == [glance.ScheduledRun("send", datetime(2100, 1, 1, 0, 0, 0, 500000, UTC))]
    assert seen.daemon is not None and seen.daemon.startswith("pid ")
    assert seen == ordinary  # the ordinary way (through the sessions) reads the same

    gone = glance.glance(settings.database_url, settings.state_dir, now, 0.0)
    assert gone is not None and gone.workers == []  # a heartbeat older than the lease


def test_a_state_at_an_older_schema_is_migrated_before_it_is_shown(
    tmp_path: Path, settings: Settings
) -> None:
    from alembic import command

    engine = make_engine(settings.database_url)
    command.upgrade(alembic_config(engine), "0019")
    url, state_dir = settings.database_url, settings.state_dir
    assert glance.glance(url, state_dir, datetime.now(UTC), 60) is None  # not at head
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndatabase_url = "{url}"\nstate_dir = "{state_dir}"\n'
        f'dumps_dir = "{settings.digest.dumps_dir}"\n',
        encoding="utf-8",
    )
    shown = CliRunner().invoke(main, ["-c", str(config), "status"])
    assert shown.exit_code == 0, shown.output
    assert "papers:   0 seen, 0 pending, 0 sent" in shown.output
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT version_num FROM alembic_version")) == (
            driver.head_revision()
        )
    engine.dispose()
    assert glance.glance(url, state_dir, datetime.now(UTC), 60) is not None


def test_status_before_the_first_ingest_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    seen = glance.glance(f"sqlite:///{state / 'digest.db'}", state, datetime.now(UTC), 60)
    assert seen is not None and seen.status.papers_seen == 0 and seen.daemon is None
    assert not state.exists()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/digest/digest.db",
        "sqlite:///relative/digest.db",
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:////tmp/with%20space/d%C3%A9j%C3%A0.db",
        "postgresql+psycopg://digest@db/digest",
        "postgresql+psycopg://digest:s3cr%40t@db:5433/digest",
        "postgresql+psycopg://digest:pw@[::1]:5432/digest?sslmode=require&application_name=x",
        "postgresql+psycopg://us%3Aer:p%2Fw@host/db%2Fname",
        "postgresql+psycopg://@/digest?host=/run/postgresql",
        "mysql+pymysql://root:pw@localhost/digest?charset=utf8mb4",
    ],
)
def test_a_state_url_is_read_and_shown_as_sqlalchemy_does(url: str) -> None:
    parsed = driver.parse_url(url)
    theirs = make_url(url)
    assert parsed is not None
    assert parsed.shown() == theirs.render_as_string(hide_password=True)
    assert (parsed.drivername, parsed.username, parsed.password) == (
        theirs.drivername,
        theirs.username,
        theirs.password,
    )
    assert (parsed.host, parsed.port, parsed.database) == (
        theirs.host,
        theirs.port,
        theirs.database,
    )
    assert dict(parsed.query) == dict(theirs.query)
