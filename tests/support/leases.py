"""A worker paused past its lease (SIGSTOP, as a VM or GC pause would): three
`digest worker --drain` processes share an outbox, one is stopped while it holds a
batch, the others take its rows over once its lease ran out, and then it goes on
(SIGCONT). Shared by tests/test_delivery_worker_leases.py and tests/bench/bench_lease_pause.py.

Nothing here sleeps to prove a point: each step waits on the event it needs (a worker
holding rows, those rows sent by the others, the processes' exit)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.exc import OperationalError

from digest.app import make_app, publishing
from digest.config import load_settings
from digest.state.models import Delivery, Subscriber, Worker
from tests.support.dumps import ROOT, write_dump
from tests.support.waiting import HANG, wait_for

WORKERS = 3


@dataclass(frozen=True)
class Pause:
    held: int  # rows the worker held when it was stopped
    bound: int  # its connections: at most one copy each may go out twice
    victim_out: str  # what the paused worker printed
    returncodes: tuple[int, ...]


def project(
    folder: Path,
    url: str,
    host: str,
    port: int,
    *,
    lease: float = 4.0,
    batch: int = 50,
    connections: int = 2,
    rate: float = 40.0,
) -> Path:
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    write_dump(folder / "dumps" / "0.txt", [(f"Paper {i}", "An abstract. " * 8) for i in range(5)])
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\ndatabase_url = "{url}"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "{host}"\nsmtp_port = {port}\n'
        f"smtp_timeout = 60.0\nconnections = {connections}\nclaim_batch = {batch}\n"
        f"lease_seconds = {lease}\nrate_limit = {rate}\n[schedule]\npoll_seconds = 0.2\n"
    )
    return config


def seed(url: str, domain: str, n: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    rows = [
        {
            "key": f"r{i}@{domain}",
            "address": f"r{i}@{domain}",
            "name": "",
            "status": "active",
            "themes": [],
            "token": secrets.token_urlsafe(32),
            "bounce_count": 0,
            "created_at": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), rows)
    engine.dispose()


def start_worker(config: Path, *flags: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "-c", str(config), "worker", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def publish(config: Path, url: str, domain: str, readers: int) -> None:
    app = make_app(load_settings(str(config)))
    app.database.engine  # noqa: B018  (creates the schema)
    seed(url, domain, readers)
    assert publishing.publish(app).issue == 1
    app.database.engine.dispose()


def pause_one(config: Path, url: str, *, at_least: int = 10) -> Pause:
    """Three drain workers; the first seen holding at least `at_least` rows is stopped
    until the others have sent every row it held, then let go on."""
    engine = create_engine(url)
    procs = [start_worker(config, "--drain") for _ in range(WORKERS)]
    try:
        pid, held = stop_a_holder(engine, procs, at_least)

        def taken_over() -> bool:
            with engine.connect() as conn:
                done = conn.scalar(
                    select(func.count()).where(Delivery.id.in_(held), Delivery.status == "sent")
                )
            return done == len(held)

        wait_for(taken_over, "the others to take over and send the paused worker's rows")
        os.kill(pid, signal.SIGCONT)
        outs = [p.communicate(timeout=HANG) for p in procs]
        by_pid = {p.pid: out for p, (out, _) in zip(procs, outs, strict=True)}
        errors = [err.decode(errors="replace")[-2000:] for _, err in outs]
        codes = tuple(p.returncode for p in procs)
        assert all(c == 0 for c in codes), (codes, errors)
        return Pause(len(held), _connections(config), by_pid[pid].decode(), codes)
    finally:
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()
        engine.dispose()


def stop_a_holder(
    engine: Engine, procs: list[subprocess.Popen[bytes]], at_least: int
) -> tuple[int, list[int]]:
    """SIGSTOP a worker while it holds at least `at_least` rows, at a moment it holds no
    database lock (a pause inside a transaction would stall every worker on SQLite's
    write lock or a row lock: another fault than this one)."""
    pids = {p.pid for p in procs}

    def holder() -> tuple[int, int] | None:
        with engine.connect() as conn:
            row = conn.execute(
                select(Delivery.claimed_by, Worker.pid)
                .join(Worker, Worker.id == Delivery.claimed_by)
                .where(Delivery.status == "sending", Worker.pid.in_(pids))
                .group_by(Delivery.claimed_by, Worker.pid)
                .having(func.count() >= at_least)
            ).first()
        return (int(row[0]), int(row[1])) if row else None

    while True:
        victim, pid = wait_for(holder, f"a worker holding {at_least} rows or more")
        os.kill(pid, signal.SIGSTOP)
        if _unlocked(engine, victim):
            with engine.connect() as conn:
                held = list(
                    conn.scalars(
                        select(Delivery.id).where(
                            Delivery.claimed_by == victim, Delivery.status == "sending"
                        )
                    )
                )
            if len(held) >= at_least:
                return pid, held
        os.kill(pid, signal.SIGCONT)  # stopped inside a transaction: try again


def _unlocked(engine: Engine, victim: int) -> bool:
    url = engine.url
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), timeout=0.5, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()
    with engine.connect() as conn:
        try:
            conn.execute(text("SET LOCAL lock_timeout = '500ms'"))
            conn.execute(text("SELECT 1 FROM rate_buckets FOR UPDATE"))
            conn.execute(text("SELECT 1 FROM workers WHERE id = :v FOR UPDATE"), {"v": victim})
            conn.execute(
                text("SELECT 1 FROM deliveries WHERE claimed_by = :v FOR UPDATE"), {"v": victim}
            )
            return True
        except OperationalError:
            return False
        finally:
            conn.rollback()


def _connections(config: Path) -> int:
    return load_settings(str(config)).email.connections
