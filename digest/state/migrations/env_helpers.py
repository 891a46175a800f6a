"""Shared by env.py and the schema test."""

from __future__ import annotations


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """APScheduler's job store table is created by migration 0002 but not modelled here."""
    table = getattr(obj, "table", None)
    owner = table.name if table is not None else name
    return owner != "apscheduler_jobs"
