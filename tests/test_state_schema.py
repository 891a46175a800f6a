"""The schema comes from Alembic migrations and matches the models on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import distinct, func, inspect, select

from digest.app import ingesting, make_app
from digest.config import Settings
from digest.state import db
from digest.state.migrations.env_helpers import include_object
from digest.state.models import Base, Paper, Sighting


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    db.upgrade(engine)  # idempotent
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_object}
        )
        assert compare_metadata(ctx, Base.metadata) == []
    names = set(inspect(engine).get_table_names())
    assert {"papers", "dump_files", "digests", "deliveries", "apscheduler_jobs"} <= names
    engine.dispose()


def test_sqlite_uses_wal(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_ddl_is_transactional(tmp_path) -> None:
    """A migration that fails half-way must leave no table behind (pysqlite alone would
    have committed each CREATE TABLE)."""
    from sqlalchemy import text

    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE half (x INTEGER)"))
            raise RuntimeError("migration failed")
    except RuntimeError:
        pass
    assert "half" not in set(inspect(engine).get_table_names())


def test_papers_are_stored_when_ids_are_not_handed_out_in_order(settings: Settings) -> None:
    """A paper put in by hand above the id sequence (a merged or restored database): on
    PostgreSQL the next dump's papers get lower ids than it, and each is still found
    and sighted (on SQLite they get higher ones)."""
    app = make_app(settings)
    with app.session() as session:
        session.add(Paper(id=1_000_000, key="put in by hand", title="Put in by hand", abstract=""))
        session.commit()
    report = ingesting.ingest(app)
    with app.session() as session:
        stored = session.scalar(select(func.count()).select_from(Paper)) - 1
        sighted = session.scalar(select(func.count(distinct(Sighting.paper_id))))
    assert stored == report.new_papers > 100
    assert sighted == stored
    app.database.engine.dispose()
