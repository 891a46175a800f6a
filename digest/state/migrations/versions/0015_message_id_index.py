"""deliveries by Message-ID: `digest bounces` finds the message a bounce names

Self-contained: it only adds an index (when not there already), so it runs after any
other revision.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INDEX = "ix_deliveries_message_id"


def upgrade() -> None:
    known = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("deliveries")}
    if INDEX not in known:
        op.create_index(INDEX, "deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="deliveries")
