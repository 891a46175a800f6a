"""Small facts about the state for the ways in: when the scheduler will publish next (its
stored jobs), when a dump was last ingested. Plain values in, plain values out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from digest.ingest.ledger import DumpStatus
from digest.state.models import DumpFile

__all__ = ["ScheduledRun", "last_ingest", "scheduled_runs"]


@dataclass(frozen=True)
class ScheduledRun:
    job: str
    at: datetime


def scheduled_runs(session: Session) -> list[ScheduledRun]:
    """The scheduler's stored jobs with a next run, soonest first (for `digest status`)."""
    rows = session.execute(
        text(
            "SELECT id, next_run_time FROM apscheduler_jobs "
            "WHERE next_run_time IS NOT NULL ORDER BY next_run_time"
        )
    ).all()
    return [ScheduledRun(job_id, datetime.fromtimestamp(ts, UTC)) for job_id, ts in rows]


def last_ingest(session: Session) -> datetime | None:
    """When a dump was last read into papers (None: never)."""
    return session.scalar(
        select(func.max(DumpFile.ingested_at)).where(DumpFile.status == DumpStatus.INGESTED)
    )
