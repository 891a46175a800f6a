"""subscribers: the subscriber list, rendered variants, and deliveries per subscriber

Deliveries become one row per (digest, subscriber) with a claim time and a time for
the next attempt. Addresses of existing deliveries become subscribers, and each digest
with deliveries gets its "every section" variant, so rows left pending still go out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("themes", sa.JSON(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("bounce_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("unsubscribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("key", name=op.f("uq_subscribers_key")),
        sa.UniqueConstraint("token", name=op.f("uq_subscribers_token")),
    )
    op.create_table(
        "digest_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["digests.id"], name=op.f("fk_digest_variants_digest_id_digests")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_variants")),
        sa.UniqueConstraint("digest_id", "key", name=op.f("uq_digest_variants_digest_id")),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("subscriber_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("variant_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
    _adopt_existing_deliveries()
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("subscriber_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint("uq_deliveries_digest_id", type_="unique")
        batch.create_unique_constraint(
            op.f("uq_deliveries_digest_id"), ["digest_id", "subscriber_id"]
        )
        batch.create_foreign_key(
            op.f("fk_deliveries_subscriber_id_subscribers"),
            "subscribers",
            ["subscriber_id"],
            ["id"],
        )
        batch.create_foreign_key(
            op.f("fk_deliveries_variant_id_digest_variants"),
            "digest_variants",
            ["variant_id"],
            ["id"],
        )
        batch.create_index("ix_deliveries_status", ["status"], unique=False)


def _tables() -> tuple[sa.TableClause, sa.TableClause, sa.TableClause, sa.TableClause]:
    deliveries = sa.table(
        "deliveries",
        sa.column("id", sa.Integer),
        sa.column("digest_id", sa.Integer),
        sa.column("address", sa.Text),
        sa.column("subscriber_id", sa.Integer),
        sa.column("variant_id", sa.Integer),
    )
    subscribers = sa.table(
        "subscribers",
        *(sa.column(c) for c in ("id", "key", "address", "name", "status", "token")),
        sa.column("themes", sa.JSON),
        sa.column("bounce_count", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    digests = sa.table("digests", *(sa.column(c) for c in ("id", "subject", "html", "text")))
    variants = sa.table(
        "digest_variants",
        *(sa.column(c) for c in ("id", "digest_id", "key", "subject", "html", "text")),
        sa.column("sections", sa.JSON),
    )
    return deliveries, subscribers, digests, variants


def _adopt_existing_deliveries() -> None:
    """Each address already delivered to becomes an active subscriber; each digest with
    deliveries gets its "*" variant (its stored e-mail) so pending rows can still go out."""
    bind = op.get_bind()
    deliveries, subscribers, digests, variants = _tables()
    rows = bind.execute(
        sa.select(deliveries.c.id, deliveries.c.digest_id, deliveries.c.address)
    ).all()
    subscriber_of = _adopt_addresses(bind, subscribers, [a for _, _, a in rows])
    variant_of: dict[int, int] = {}
    for digest_id in sorted({d for _, d, _ in rows}):
        d = bind.execute(sa.select(digests).where(digests.c.id == digest_id)).one()
        bind.execute(
            variants.insert().values(
                digest_id=digest_id,
                key="*",
                sections=[],
                subject=d.subject,
                html=d.html,
                text=d.text,
            )
        )
        find = sa.select(variants.c.id).where(variants.c.digest_id == digest_id)
        variant_of[digest_id] = bind.execute(find).scalar_one()
    for delivery_id, digest_id, address in rows:
        bind.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(
                subscriber_id=subscriber_of[address.strip().lower()],
                variant_id=variant_of[digest_id],
            )
        )


def _adopt_addresses(
    bind: sa.Connection, subscribers: sa.TableClause, addresses: list[str]
) -> dict[str, int]:
    """Subscriber ids by folded address, creating the subscribers."""
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":  # UTCDateTime stores naive UTC there
        now = now.replace(tzinfo=None)
    ids: dict[str, int] = {}
    for address in addresses:
        key = address.strip().lower()
        if key in ids:
            continue
        bind.execute(
            subscribers.insert().values(
                key=key,
                address=address.strip(),
                name="",
                status="active",
                themes=[],
                token=secrets.token_urlsafe(32),
                bounce_count=0,
                created_at=now,
            )
        )
        ids[key] = bind.execute(
            sa.select(subscribers.c.id).where(subscribers.c.key == key)
        ).scalar_one()
    return ids


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_status")
        batch.drop_constraint("fk_deliveries_variant_id_digest_variants", type_="foreignkey")
        batch.drop_constraint("fk_deliveries_subscriber_id_subscribers", type_="foreignkey")
        batch.drop_constraint("uq_deliveries_digest_id", type_="unique")
        batch.create_unique_constraint(op.f("uq_deliveries_digest_id"), ["digest_id", "address"])
        batch.drop_column("next_attempt_at")
        batch.drop_column("claimed_at")
        batch.drop_column("variant_id")
        batch.drop_column("subscriber_id")
    op.drop_table("digest_variants")
    op.drop_table("subscribers")
