"""digests.text goes: nothing read it (each variant keeps its own text part, in
digest_variants.text, since 0003)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER (SQLite 3.35+ and PostgreSQL): a batch copy of the table would have
    # to drop `digests` under the foreign keys of digest_items, variants and deliveries.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("digests")}
    if "text" in columns:
        op.execute("ALTER TABLE digests DROP COLUMN text")


def downgrade() -> None:
    op.add_column("digests", sa.Column("text", sa.Text(), nullable=False, server_default=""))
