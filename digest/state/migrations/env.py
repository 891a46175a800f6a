"""Alembic environment: the engine is handed in by digest.db (or built from -x url=...)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from digest.state.migrations.env_helpers import include_object
from digest.state.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic -x url=sqlite:///state/digest.db revision --autogenerate`
    engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])
# Several processes may start at once on an empty PostgreSQL database (the compose stack:
# daemon, web server and workers); one migrates, the others wait for its commit and then
# find the schema current (without this they fail on the duplicate alembic_version table).
MIGRATE_LOCK = 0x6469_6767  # after locks.PUBLISH and locks.DAEMON

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK})
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
