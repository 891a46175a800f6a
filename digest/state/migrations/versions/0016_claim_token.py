"""deliveries: the claim token of the worker run that holds a row

A worker run claims rows under a random token of its own; marking a row sent, failed
or pending again, renewing its lease and letting it go all name that token, so a worker
that was paused past its lease (its rows taken over by another) changes nothing it no
longer holds.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only when not yet done (see 0007: a database may be set back and brought up again).
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("deliveries")}
    if "claim_token" not in columns:
        op.add_column("deliveries", sa.Column("claim_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries DROP COLUMN claim_token")
