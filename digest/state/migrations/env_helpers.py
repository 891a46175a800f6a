"""Shared by env.py and the schema test."""

from __future__ import annotations

# The archive's full-text index (migration 0018) is not modelled: FTS5's table and its
# shadow tables and ix_digests_search on SQLite, the generated tsvector column and its
# GIN index on PostgreSQL.
SEARCH_INDEX = ("paper_search", "search_vector", "ix_papers_search", "ix_digests_search")


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """APScheduler's job store table is created by migration 0002 but not modelled here;
    nor is the full-text index (SEARCH_INDEX)."""
    table = getattr(obj, "table", None)
    owner = table.name if table is not None else name
    if name is not None and name.startswith(SEARCH_INDEX):
        return False
    return owner != "apscheduler_jobs" and not (owner or "").startswith("paper_search")
