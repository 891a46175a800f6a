"""subscribers: the phrases each reader watches and mutes

Two text columns, ";"-separated phrases as the reader gave them (checked on the way in:
personal/phrases.py); empty for everyone at first. Self-contained: it only adds the
columns (when not there already), so it runs after any other revision.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

COLUMNS = ("watch", "mute")


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("subscribers")}
    for name in COLUMNS:
        if name not in present:
            op.add_column(
                "subscribers", sa.Column(name, sa.Text(), nullable=False, server_default="")
            )


def downgrade() -> None:
    # Not a batch copy: rebuilding `subscribers` on SQLite would break the foreign keys
    # of its deliveries; SQLite (3.35+) drops a plain column in place.
    for name in COLUMNS:
        op.drop_column("subscribers", name)
