"""paper_facts: each paper's one-line summary and area-term hits, worked out once

A paper's summary and where the vocabulary's terms occur in it depend on the paper alone,
so they are computed when it is stored and kept here under the version of the summariser
and vocabulary that made them; a publish reads them instead of working them out again. A
row of another version is worked out again. Papers stored before this revision get theirs
at their publish.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "paper_facts" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "paper_facts",
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("hits", sa.Text(), nullable=False),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["papers.id"],
            name="fk_paper_facts_paper_id_papers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("paper_id", name="pk_paper_facts"),
    )


def downgrade() -> None:
    op.drop_table("paper_facts")
