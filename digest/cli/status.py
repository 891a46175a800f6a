"""`digest status`: the state as it is, the daemon and its next run, the workers, the
last digest (thin over the App's inspecting use cases; nothing is created). The state is
read first without SQLAlchemy (`App.glance`), else the ordinary way (`App.overview`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli import workers as cli_workers
from digest.cli.console import out, safe
from digest.cli.context import Obj

if TYPE_CHECKING:
    from digest.state.glance import Glance


@click.command()
@click.pass_obj
def status(obj: Obj) -> None:
    """Show papers seen / pending / sent, dumps ingested and failed, and the last digest."""
    from digest.app import inspecting

    app = obj.app()  # builds nothing: the state is read with its driver alone if it can be
    view = inspecting.glance(app)
    if view is None:  # the ordinary way: migrated first, or shown read-only
        app = obj.reader_app()
        view = inspecting.overview(app)
    s = view.status
    missing = "" if app.has_state() else " (not created yet: `digest send` or `digest ingest`)"
    out.print(f"state:    {app.shown_database_url()}{missing}")
    out.print(f"papers:   {s.papers_seen} seen, {s.papers_pending} pending, {s.papers_sent} sent")
    out.print(f"dumps:    {s.dumps_ingested} ingested, {s.dumps_failed} failed")
    for path, error in s.failed:
        out.print(f"  failed: {safe(error or path)}")
    if s.last_listing_date:
        out.print(f"newest listing: {s.last_listing_date:%Y-%m-%d}")
    print_schedule(view)
    cli_workers.print_workers(view.workers, app.clock(), out)
    if s.last_issue is None:
        out.print("last digest: none yet")
        return
    when = (
        s.last_published_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")
        if s.last_published_at
        else "?"
    )
    out.print(f"last digest: #{s.last_issue} at {when}: {safe(s.last_subject or '')}")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.deliveries.items())) or "no recipients"
    out.print(f"deliveries:  {counts}")


def print_schedule(view: Glance) -> None:
    holder, runs = view.daemon, view.runs
    out.print(f"daemon:   {'running (' + holder + ')' if holder else 'not running'}")
    if runs:
        when = runs[0].at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        out.print(f"next run: {when}{'' if holder else ' (when the daemon is running)'}")
