"""`digest worker`, and the extra workers of `digest send --workers N`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from digest.cli.console import err, out
from digest.cli.interrupts import Interrupts

if TYPE_CHECKING:
    from digest.app import App
    from digest.mail.delivery import DeliveryReport
    from digest.state.glance import WorkerInfo

Update = Callable[[str, int, int, str], None] | None


@click.command()
@click.option(
    "--drain",
    is_flag=True,
    help="Exit once no delivery is left pending or held by another worker (a dead "
    "worker's rows are taken back when its lease ends); default: keep polling.",
)
@click.pass_context
def worker(ctx: click.Context, drain: bool) -> None:
    """Deliver pending messages, as one of any number of workers (on PostgreSQL, on
    any number of machines; SQLite: one at a time).

    A worker claims deliveries in batches (email.claim_batch), sends them over
    email.connections connections within email.rate_limit (one limit for all
    workers together, kept in the database), and holds them under a lease
    (email.lease_seconds) that its heartbeat renews; a worker that dies leaves its
    rows to the others once the lease ends. Publishing stays with `digest send` /
    `digest run`. Ctrl-C or SIGTERM: messages in flight finish, the
    rest stays pending, exit 130 / 143; a second Ctrl-C stops at once.
    """
    from digest.app import delivering

    app: App = ctx.obj.app()
    with Interrupts(err) as stop:
        report = delivering.deliver_pending(
            app, None, stop.soon, abort=stop.now, drain=True, forever=not drain
        )
    out.print(summary(report))
    if stop.code:
        ctx.exit(stop.code)


def summary(d: DeliveryReport) -> str:
    line = f"worker: {d.sent} sent, {d.failed} failed, {d.deferred} deferred"
    return line + (f"; {d.stopped}" if d.stopped else "")


def usable(app: App, wanted: int, console: Console) -> int:
    """SQLite takes one writer at a time: extra workers would only wait on each other."""
    if wanted > 1 and app.database.dialect_name == "sqlite":
        console.print(
            f"--workers {wanted}: SQLite state runs one delivery worker; use PostgreSQL "
            "(database_url) for more"
        )
        return 1
    return wanted


def deliver_with(
    app: App, obj: Any, workers: int, stop: Interrupts, update: Update
) -> DeliveryReport:
    """This process delivers alongside workers-1 `digest worker --drain` children; each
    prints its own summary line; this one's report is returned."""
    from digest.app import delivering

    command = [sys.executable, "-m", "digest"]
    if obj.config:
        command += ["--config", obj.config]
    for _ in range(workers - 1):
        stop.children.append(subprocess.Popen([*command, "worker", "--drain"]))
    try:
        return delivering.deliver_pending(app, update, stop.soon, abort=stop.now, drain=True)
    finally:
        for child in stop.children:
            child.wait()


def print_workers(live: Sequence[WorkerInfo], now: datetime, out: Console) -> None:
    """The live delivery workers and what each has done."""
    if not live:
        out.print("workers:  none delivering")
        return
    out.print(f"workers:  {len(live)} delivering")
    for w in live:
        out.print(
            f"  #{w.id} pid {w.pid} on {w.host}: {w.sent} sent, {w.failed} failed, "
            f"{w.deferred} deferred (up {_ago(now, w.started_at)}, "
            f"heartbeat {_ago(now, w.heartbeat_at)} ago)"
        )


def _ago(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
