"""workers: delivery processes with a heartbeat, and who holds each claimed delivery;
papers remember their digest; dump files their mtime

A delivery row in 'sending' names its worker; the worker's heartbeat renews the row's
``claimed_at``, and only a row whose lease ran out goes back to pending. A paper's
``published_in`` (NULL: pending, behind a partial index) makes "not yet in a digest" one
indexed query; a dump file's size and mtime recognise it before its bytes are hashed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_workers"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
    with op.batch_alter_table("dump_files") as batch:
        batch.add_column(sa.Column("mtime_ns", sa.BigInteger(), nullable=True))
        batch.create_index("ix_dump_files_path", ["path"], unique=False)
    with op.batch_alter_table("papers") as batch:
        batch.add_column(sa.Column("published_in", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE papers SET published_in = (SELECT digest_id FROM digest_items "
        "WHERE digest_items.paper_id = papers.id)"
    )
    op.create_index(
        "ix_digest_items_slug", "digest_items", ["section_slug", "digest_id"], unique=False
    )
    op.create_index(
        "ix_papers_pending",
        "papers",
        ["id"],
        unique=False,
        sqlite_where=sa.text("published_in IS NULL"),
        postgresql_where=sa.text("published_in IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_papers_pending", table_name="papers")
    op.drop_index("ix_digest_items_slug", table_name="digest_items")
    with op.batch_alter_table("papers") as batch:
        batch.drop_column("published_in")
    with op.batch_alter_table("dump_files") as batch:
        batch.drop_index("ix_dump_files_path")
        batch.drop_column("mtime_ns")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("claimed_by")
    op.drop_table("workers")
