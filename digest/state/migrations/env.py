"""Alembic environment: the engine is handed in by digest.db (or built from -x url=...)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from digest.state.migrations.env_helpers import include_object
from digest.state.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # `alembic -x url=sqlite:///state/digest.db revision --autogenerate`
    engine = create_engine(context.get_x_argument(as_dictionary=True)["url"])


with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
