"""feedback: a reader's "more / less like this" marks, and each subscriber's feed token

One row per (subscriber, paper key): +1 (more like this) or -1 (less), with when it was
last marked (a second mark of the same paper replaces the first); the rows go with their
subscriber (ON DELETE CASCADE). ``subscribers.feed_token`` names a reader's private feed
(``/feeds/<feed_token>.xml``): unique, not the unsubscribe token, a fresh random one for
every subscriber already stored.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _token() -> str:
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


def upgrade() -> None:
    # Each step only when not yet done (see 0007: a database may be set back and brought
    # up again); self-contained, whatever migration runs before it.
    bind = op.get_bind()
    inspect = sa.inspect(bind)
    if "feedback" not in inspect.get_table_names():
        op.create_table(
            "feedback",
            sa.Column("subscriber_id", sa.Integer(), nullable=False),
            sa.Column("paper_key", sa.Text(), nullable=False),
            sa.Column("value", sa.SmallInteger(), nullable=False),
            sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["subscriber_id"],
                ["subscribers.id"],
                name=op.f("fk_feedback_subscriber_id_subscribers"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("subscriber_id", "paper_key", name=op.f("pk_feedback")),
        )
    if "feed_token" not in {c["name"] for c in inspect.get_columns("subscribers")}:
        op.add_column("subscribers", sa.Column("feed_token", sa.String(length=64), nullable=True))
    subscribers = sa.table("subscribers", sa.column("id"), sa.column("feed_token"))
    missing = [
        i for (i,) in bind.execute(sa.text("SELECT id FROM subscribers WHERE feed_token IS NULL"))
    ]
    if missing:
        bind.execute(
            subscribers.update()
            .where(subscribers.c.id == sa.bindparam("sid"))
            .values(feed_token=sa.bindparam("token")),
            [{"sid": i, "token": _token()} for i in missing],
        )
    if "uq_subscribers_feed_token" not in {
        i["name"] for i in sa.inspect(bind).get_indexes("subscribers")
    } | {c["name"] for c in sa.inspect(bind).get_unique_constraints("subscribers")}:
        op.create_index("uq_subscribers_feed_token", "subscribers", ["feed_token"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_subscribers_feed_token", table_name="subscribers")
    op.execute("ALTER TABLE subscribers DROP COLUMN feed_token")
    op.drop_table("feedback")
