"""readers: each issue's feed entry, and sign-ups waiting for their confirmation

``digests.feed_html`` holds the issue as a feed entry (plain semantic HTML); issues
published before it stay NULL and their entry is cut from the stored web copy.
``signups`` holds one row per confirmation e-mail sent by the /subscribe form: only the
SHA-256 of its token, when it expires, and a keyed hash of the requesting IP (for the
rate limit). Existing rows and values keep their meaning.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("digests") as batch:
        batch.add_column(sa.Column("feed_html", sa.Text(), nullable=True))
    op.create_table(
        "signups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("themes", sa.JSON(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signups")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_signups_token_hash")),
    )
    op.create_index("ix_signups_key", "signups", ["key"])
    op.create_index("ix_signups_ip_hash", "signups", ["ip_hash"])


def downgrade() -> None:
    op.drop_index("ix_signups_ip_hash", table_name="signups")
    op.drop_index("ix_signups_key", table_name="signups")
    op.drop_table("signups")
    with op.batch_alter_table("digests") as batch:
        batch.drop_column("feed_html")
