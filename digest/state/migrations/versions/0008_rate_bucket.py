"""rate buckets: the delivery rate limit kept in the state, shared by every worker

One row per bucket (``email``: `email.rate_limit`); ``next_slot`` is the first free
send slot, in microseconds since the Unix epoch by the database's clock. A worker moves
it forward by a block of slots in one UPDATE … RETURNING, so all workers on all hosts
draw from the same bucket.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only when not yet done (see 0007: a database may be set back and brought up again).
    if "rate_buckets" in sa.inspect(op.get_bind()).get_table_names():
        return
    buckets = op.create_table(
        "rate_buckets",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("next_slot", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rate_buckets")),
    )
    op.bulk_insert(buckets, [{"name": "email", "next_slot": 0}])


def downgrade() -> None:
    op.drop_table("rate_buckets")
