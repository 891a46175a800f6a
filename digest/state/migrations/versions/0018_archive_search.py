"""the archive's full-text index: published papers' titles and abstracts

SQLite: an FTS5 table ``paper_search`` (its own copy of the text, so a row is removed by
rowid alone and can never be left half-deleted), filled by triggers on ``papers`` when
a paper is published (``published_in`` set) or its text changes; and
``ix_digests_search`` (digests: id, issue, published_at), so a hit's issue is read
without its digest's megabytes. PostgreSQL: a stored generated ``papers.search_vector``
(title weighted A, abstract B; NULL until published) under a GIN index. Either way the
existing archive is indexed here, and ingesting a dump (papers with no
``published_in``) costs the index nothing. digest/state/archive.py queries it.

A later migration that rebuilds ``papers`` on SQLite (a batch "move and copy") drops its
triggers: it must run ``create_sqlite_triggers`` again (tests/test_web_search.py fails
otherwise: a publish after the migration would not be found).

Self-contained: it only adds objects (when not there already), so it runs after any
other revision.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = [
    # every change of a paper's text or publication re-indexes it (or leaves it out)
    "CREATE TRIGGER IF NOT EXISTS paper_search_update"
    " AFTER UPDATE OF published_in, title, abstract ON papers BEGIN"
    " DELETE FROM paper_search WHERE rowid = old.id;"
    " INSERT INTO paper_search (rowid, title, abstract)"
    " SELECT new.id, new.title, new.abstract WHERE new.published_in IS NOT NULL;"
    " END",
    "CREATE TRIGGER IF NOT EXISTS paper_search_insert AFTER INSERT ON papers"
    " WHEN new.published_in IS NOT NULL BEGIN"
    " INSERT INTO paper_search (rowid, title, abstract) VALUES (new.id, new.title, new.abstract);"
    " END",
    "CREATE TRIGGER IF NOT EXISTS paper_search_delete AFTER DELETE ON papers BEGIN"
    " DELETE FROM paper_search WHERE rowid = old.id;"
    " END",
]

POSTGRESQL_VECTOR = (
    "CASE WHEN published_in IS NULL THEN NULL ELSE"
    " setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A')"
    " || setweight(to_tsvector('simple'::regconfig, coalesce(abstract, '')), 'B') END"
)


def create_sqlite_triggers() -> None:
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        if "paper_search" not in sa.inspect(bind).get_table_names():
            op.execute(
                "CREATE VIRTUAL TABLE paper_search USING fts5("
                "title, abstract, tokenize = 'unicode61 remove_diacritics 2')"
            )
            op.execute(
                "INSERT INTO paper_search (rowid, title, abstract)"
                " SELECT id, title, abstract FROM papers WHERE published_in IS NOT NULL"
            )
        create_sqlite_triggers()
        # a hit's issue number and date without reading its digest's row, whose web copy
        # (megabytes, before published_at) SQLite would walk through for each hit
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_digests_search ON digests (id, issue, published_at)"
        )
        return
    columns = {c["name"] for c in sa.inspect(bind).get_columns("papers")}
    if "search_vector" not in columns:
        op.execute(
            "ALTER TABLE papers ADD COLUMN search_vector tsvector"
            f" GENERATED ALWAYS AS ({POSTGRESQL_VECTOR}) STORED"
        )
    op.execute("CREATE INDEX IF NOT EXISTS ix_papers_search ON papers USING GIN (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("update", "insert", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS paper_search_{name}")
        op.execute("DROP TABLE IF EXISTS paper_search")
        op.execute("DROP INDEX IF EXISTS ix_digests_search")
        return
    op.execute("DROP INDEX IF EXISTS ix_papers_search")
    op.execute("ALTER TABLE papers DROP COLUMN IF EXISTS search_vector")
