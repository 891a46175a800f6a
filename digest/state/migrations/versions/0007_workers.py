"""workers: delivery processes with a heartbeat, and who holds each claimed delivery;
papers remember their digest; dump files their mtime

A delivery row in 'sending' names its worker; the worker's heartbeat renews the row's
``claimed_at``, and only a row whose lease ran out goes back to pending. A paper's
``published_in`` (NULL: pending, behind a partial index) makes "not yet in a digest" one
indexed query; a dump file's size and mtime recognise it before its bytes are hashed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Each step only when not yet done: a database made at a newer head and set back to
    # an older revision (the key migration's test does that) is brought up again safely.
    # Plain ADD COLUMN (no batch copy of tables that others reference).
    inspect = sa.inspect(op.get_bind())
    tables = set(inspect.get_table_names())
    if "workers" not in tables:
        op.create_table(
            "workers",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("host", sa.String(length=255), nullable=False),
            sa.Column("pid", sa.Integer(), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("sent", sa.Integer(), nullable=False),
            sa.Column("failed", sa.Integer(), nullable=False),
            sa.Column("deferred", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
        )

    def add(table: str, column: sa.Column[Any]) -> None:
        if column.name not in {c["name"] for c in inspect.get_columns(table)}:
            op.add_column(table, column)

    def index(name: str, table: str, columns: list[str], **kw: Any) -> None:
        if name not in {i["name"] for i in inspect.get_indexes(table)}:
            op.create_index(name, table, columns, unique=False, **kw)

    add("deliveries", sa.Column("claimed_by", sa.Integer(), nullable=True))
    add("dump_files", sa.Column("mtime_ns", sa.BigInteger(), nullable=True))
    add("papers", sa.Column("published_in", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE papers SET published_in = (SELECT digest_id FROM digest_items "
        "WHERE digest_items.paper_id = papers.id)"
    )
    index("ix_dump_files_path", "dump_files", ["path"])
    index("ix_digest_items_slug", "digest_items", ["section_slug", "digest_id"])
    index(
        "ix_papers_pending",
        "papers",
        ["id"],
        sqlite_where=sa.text("published_in IS NULL"),
        postgresql_where=sa.text("published_in IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_papers_pending", table_name="papers")
    op.drop_index("ix_digest_items_slug", table_name="digest_items")
    op.drop_index("ix_dump_files_path", table_name="dump_files")
    op.execute("ALTER TABLE papers DROP COLUMN published_in")
    op.execute("ALTER TABLE dump_files DROP COLUMN mtime_ns")
    op.execute("ALTER TABLE deliveries DROP COLUMN claimed_by")
    op.drop_table("workers")
