"""each published paper keeps its own area, decided once at publish

``digest_items.area_slug`` is the paper's most specific area of the vocabulary (or a
discovered topic, or the catch-all); ``section_slug`` stays the section it printed under
(the area itself or one of its ancestors). A reader who chose an area gets every paper whose
area is it or one below it, whatever section an issue printed it under. Rows published
before this revision take their section as their area.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("digest_items")}
    if "area_slug" in columns:
        return
    with op.batch_alter_table("digest_items") as batch:
        batch.add_column(
            sa.Column("area_slug", sa.String(length=200), nullable=False, server_default="")
        )
    op.execute("UPDATE digest_items SET area_slug = section_slug")
    op.create_index("ix_digest_items_area", "digest_items", ["area_slug", "digest_id"])


def downgrade() -> None:
    op.drop_index("ix_digest_items_area", table_name="digest_items")
    with op.batch_alter_table("digest_items") as batch:
        batch.drop_column("area_slug")
