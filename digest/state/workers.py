"""Delivery workers in the state: each worker (a process that delivers: `digest worker`,
or a `digest send` delivering) registers a row and keeps its heartbeat fresh; the
heartbeat renews the lease on the deliveries it holds. Rows held by a worker whose
heartbeat stopped (or whose process is gone, on this host) go back to pending; a live
worker's rows are never taken. Heartbeats and leases are written and compared by the
database's clock only, so hosts whose clocks differ agree. (Convention: state/handles.py.)"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from digest.state import claims, glance
from digest.state.dbclock import db_ago, db_now
from digest.state.glance import WorkerInfo
from digest.state.handles import Tx, dialect, driver
from digest.state.models import Worker

HOST = socket.gethostname()[:255]


def register(tx: Tx) -> int:
    row = tx.execute(
        insert(Worker)
        .values(
            host=HOST,
            pid=os.getpid(),
            started_at=db_now(),
            heartbeat_at=db_now(),
            sent=0,
            failed=0,
            deferred=0,
        )
        .returning(Worker.id)
    )
    return int(row.scalar_one())


def beat(tx: Tx, worker_id: int, token: str, counts: dict[str, int]) -> None:
    """Alive: the heartbeat and progress are stored, and the lease on the rows held under
    the claim `token` renewed (the worker row first, then the rows: in the order a
    reaper takes them, so the two never wait on each other on PostgreSQL)."""
    tx.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(
            heartbeat_at=db_now(),
            sent=counts.get("sent", 0),
            failed=counts.get("failed", 0),
            deferred=counts.get("deferred", 0),
        )
    )
    claims.renew(tx, worker_id, token)


def unregister(tx: Tx, worker_id: int) -> None:
    tx.execute(delete(Worker).where(Worker.id == worker_id))


def reap(tx: Tx, lease: float) -> int:
    """Take back what dead workers held: rows whose lease ran out (by the database's
    clock), and rows of a worker on this host whose process is gone (no need to wait
    for its lease). Returns how many rows went back to pending."""
    local = tx.execute(select(Worker.id, Worker.pid).where(Worker.host == HOST)).all()
    dead = [wid for wid, pid in local if pid != os.getpid() and not _alive(pid)]
    gone = Worker.heartbeat_at < db_ago(lease)
    tx.execute(
        delete(Worker).where(gone | Worker.id.in_(dead)) if dead else delete(Worker).where(gone)
    )
    return claims.release_expired(tx, lease, dead)


def listing(tx: Tx, now: datetime, lease: float) -> list[WorkerInfo]:
    """The workers whose heartbeat is fresher than `lease` seconds before `now`."""
    return glance.workers(driver(tx), dialect(tx), now, lease)


def _alive(pid: int) -> bool:
    """Whether a process of this host runs (a zombie, killed but not yet reaped by its
    parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]
