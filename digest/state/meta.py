"""Small facts about the state for the ways in: when the scheduler will publish next (its
stored jobs), when a dump was last ingested. Plain values in, plain values out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.ingest.ledger import DumpStatus
from digest.state import glance
from digest.state.glance import ScheduledRun
from digest.state.handles import dialect, driver
from digest.state.models import DumpFile

__all__ = ["ScheduledRun", "last_ingest", "scheduled_runs"]


def scheduled_runs(session: Session) -> list[ScheduledRun]:
    """The scheduler's stored jobs with a next run, soonest first (for `digest status`)."""
    return glance.scheduled_runs(driver(session), dialect(session))


def last_ingest(session: Session) -> datetime | None:
    """When a dump was last read into papers (None: never)."""
    return session.scalar(
        select(func.max(DumpFile.ingested_at)).where(DumpFile.status == DumpStatus.INGESTED)
    )
