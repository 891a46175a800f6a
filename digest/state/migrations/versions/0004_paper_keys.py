"""paper keys: recompute every stored key with the one fold of digest.ingest.keys

The fold now keeps "#" ("C# Compilers" is no longer "C Compilers") and drops a few more
invisible characters, so a stored key can differ from the key the same title gets now:
without this, the next dump listing such a paper would store it (and publish it) again.

Papers whose titles now share a key are one paper: the younger one's sightings and, if
only it was published, its place in that digest move to the older one, and the younger
row goes. When both were published, both stay (the younger under its key plus a unit
separator and its id), so no published issue loses a paper. Each merge is logged.

Downgrading keeps the new keys (the old fold is gone).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import logging

import sqlalchemy as sa
from alembic import op

from digest.ingest.keys import paper_key

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

log = logging.getLogger("digest.state.migrations")

papers = sa.table(
    "papers", sa.column("id", sa.Integer), sa.column("key", sa.Text), sa.column("title", sa.Text)
)
sightings = sa.table(
    "sightings",
    sa.column("paper_id", sa.Integer),
    sa.column("dump_id", sa.Integer),
    sa.column("position", sa.Integer),
)
items = sa.table("digest_items", sa.column("paper_id", sa.Integer))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(papers.c.id, papers.c.key, papers.c.title).order_by(papers.c.id)
    ).all()
    published = set(bind.execute(sa.select(items.c.paper_id)).scalars())
    current = {pid: key for pid, key, _ in rows}
    titles = {pid: title for pid, _, title in rows}
    wanted: dict[int, str] = {}
    owner: dict[str, int] = {}  # new key -> the (oldest) paper that keeps it
    for pid, _, title in rows:
        new = paper_key(title) or title
        survivor = owner.setdefault(new, pid)
        if survivor == pid:
            wanted[pid] = new
        elif pid in published and survivor in published:
            wanted[pid] = f"{new}\x1f{pid}"
            log.warning(
                "papers #%d %r and #%d %r now share a key but were both published: kept both",
                survivor,
                titles[survivor],
                pid,
                title,
            )
        else:
            _merge(bind, pid, survivor, moves_item=pid in published)
            published |= {survivor} if pid in published else set()
            log.warning("merged paper #%d %r into #%d %r (same key)", pid, title, survivor,
                        titles[survivor])  # fmt: skip
    changed = {pid: key for pid, key in wanted.items() if key != current[pid]}
    for pid in changed:  # two passes: no update meets a key another row still holds
        bind.execute(papers.update().where(papers.c.id == pid).values(key=f"\x1f{pid}"))
    for pid, key in changed.items():
        bind.execute(papers.update().where(papers.c.id == pid).values(key=key))


def _merge(bind: sa.Connection, dup: int, survivor: int, *, moves_item: bool) -> None:
    have = set(
        bind.execute(sa.select(sightings.c.dump_id).where(sightings.c.paper_id == survivor))
        .scalars()
        .all()
    )
    moved = bind.execute(
        sa.select(sightings.c.dump_id, sightings.c.position).where(sightings.c.paper_id == dup)
    ).all()
    bind.execute(sightings.delete().where(sightings.c.paper_id == dup))
    for dump_id, position in moved:
        if dump_id not in have:
            bind.execute(
                sightings.insert().values(paper_id=survivor, dump_id=dump_id, position=position)
            )
    if moves_item:
        bind.execute(items.update().where(items.c.paper_id == dup).values(paper_id=survivor))
    bind.execute(papers.delete().where(papers.c.id == dup))


def downgrade() -> None:
    pass
