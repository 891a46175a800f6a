"""web copy gzip: each issue's web copy stored as its gzip (``digests.web_gz``)

The web copy is the largest thing stored (26 MB of HTML at 10,000 papers); stored as
gzip (level 6, no timestamp: the bytes of the ``<n>.html.gz`` written beside the page)
it is about a fifth of that, and storing it costs a publish a fifth of the memory and
of the writing. Every stored copy is moved over, one row at a time (one copy in memory
at once), and ``web_html`` is left empty; the downgrade moves them back.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

import gzip

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

LEVEL = 6  # as digest.state.digests.gzip_copy (a migration imports nothing of digest)

digests = sa.table(
    "digests", sa.column("id"), sa.column("web_html", sa.Text), sa.column("web_gz", sa.LargeBinary)
)


def _columns() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("digests")}


def upgrade() -> None:
    # Each step only when not yet done (see 0007); self-contained, whatever migration
    # runs before it.
    bind = op.get_bind()
    if "web_gz" not in _columns():
        op.add_column("digests", sa.Column("web_gz", sa.LargeBinary(), nullable=True))
    ids = bind.execute(
        sa.select(digests.c.id).where(digests.c.web_gz.is_(None), digests.c.web_html != "")
    ).scalars()
    for digest_id in list(ids):
        html = bind.execute(
            sa.select(digests.c.web_html).where(digests.c.id == digest_id)
        ).scalar_one()
        packed = gzip.compress(html.encode("utf-8"), LEVEL, mtime=0)
        del html
        bind.execute(
            digests.update().where(digests.c.id == digest_id).values(web_gz=packed, web_html="")
        )


def downgrade() -> None:
    bind = op.get_bind()
    if "web_gz" not in _columns():
        return
    ids = bind.execute(sa.select(digests.c.id).where(digests.c.web_gz.is_not(None))).scalars()
    for digest_id in list(ids):
        packed = bind.execute(
            sa.select(digests.c.web_gz).where(digests.c.id == digest_id)
        ).scalar_one()
        html = gzip.decompress(packed).decode("utf-8")
        bind.execute(digests.update().where(digests.c.id == digest_id).values(web_html=html))
    # Not a batch copy: rebuilding `digests` on SQLite would break the foreign keys of
    # its items and deliveries; SQLite (3.35+) drops a plain column in place.
    op.drop_column("digests", "web_gz")
