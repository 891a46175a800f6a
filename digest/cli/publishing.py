"""`digest ingest`, `preview` and `send`: thin commands over the App's publishing use
cases (ingest, preview, dry_run, send_to, publish, send), and how their reports print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli import workers as cli_workers
from digest.cli.console import err, out, safe, shown
from digest.cli.context import Obj, progress_bar, reported_here
from digest.cli.interrupts import Interrupts
from digest.fsutil import atomic_write

if TYPE_CHECKING:
    from digest.app import App
    from digest.app.publishing import SendReport
    from digest.ingest.ledger import IngestReport


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Read new dump files into the state without publishing.

    PATHS are dump files; without them, every file in the dumps folder. A file
    already ingested (same content) is skipped; one that cannot be parsed is
    recorded as failed and the others carry on. Exits 1 when every new file failed.
    """
    from digest.app import ingesting

    obj: Obj = ctx.obj
    app = obj.app()
    with progress_bar("Ingesting") as update, reported_here(obj.verbose):
        report = ingesting.ingest(
            app, list(paths) or None, update, lambda text: err.print(safe(text))
        )
    print_ingest(report)
    fresh = report.fresh
    if fresh and len(report.failed) == len(fresh):
        ctx.exit(1)  # each failure is on its own line above


def print_ingest(report: IngestReport, *, dry_run: bool = False) -> None:
    """One line per dump: what was read (or, for a dry run that stores nothing, what
    would be), failed, refused or still being written, and its parse warnings."""
    from digest.ingest.ledger import DumpStatus

    for d in report.dumps:
        if d.status == DumpStatus.INGESTED:
            name = safe(shown(d.path))
            verb = "would ingest" if dry_run else "ingested"
            out.print(f"{verb} {name}: {d.papers} papers, {d.new_papers} new")
            for warning in d.warnings:
                out.print(f"  [yellow]warning[/] {safe(warning)}")
        elif d.status == DumpStatus.FAILED:
            out.print(f"[red]failed[/] {safe(d.error)}")
        elif d.status == DumpStatus.REFUSED:
            out.print(f"[yellow]skipped[/] {safe(d.error)}")
        elif d.status == DumpStatus.WAITING:
            out.print(f"[yellow]waiting[/] {safe(d.error)}")
    known = sum(1 for d in report.dumps if d.status == DumpStatus.KNOWN)
    if known:
        out.print(f"{known} dump(s) already ingested, skipped")


@click.command()
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("preview.html"),
    show_default=True,
    help="Where to write the e-mail HTML; the text part goes next to it as .txt and "
    "the web copy as .web.html.",
)
@click.pass_obj
def preview(obj: Obj, out_path: Path) -> None:
    """Render the pending digest (new dumps included) to files, publishing nothing."""
    from digest.app import publishing

    prepared, reason = publishing.preview(obj.app())
    if prepared is None:
        out.print(reason)
        return
    atomic_write(out_path, prepared.html)
    atomic_write(out_path.with_suffix(".txt"), prepared.text)
    atomic_write(out_path.with_suffix(".web.html"), prepared.web_html)
    out.print(safe(prepared.view.subject))
    out.print(
        f"wrote {out_path}, {out_path.with_suffix('.txt')}, {out_path.with_suffix('.web.html')}"
    )


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Show what would be published and to whom; change nothing."
)
@click.option(
    "--to",
    "to",
    metavar="ADDR",
    help="Send the pending digest to this one address only, to check it; marks nothing as sent.",
)
@click.option(
    "--wait",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait if another digest process is publishing.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Delivery processes (this one and N-1 `digest worker --drain`); more than one "
    "needs PostgreSQL.",
)
@click.pass_context
def send(ctx: click.Context, dry_run: bool, to: str | None, wait: float, workers: int) -> None:
    """Do the whole job once: ingest new dumps, publish the papers never sent as one
    themed digest (feeds, web copy), and e-mail it to every recipient.

    With nothing to publish it says why in one line and exits 0. Deliveries left
    pending by an earlier run (a server that was down) are retried. Ctrl-C or SIGTERM
    stops taking new messages: those in flight finish, the rest stays pending for the
    next run, and it exits 130 (143 for SIGTERM); a second Ctrl-C stops at once.
    """
    from digest.app import publishing

    obj: Obj = ctx.obj
    app = obj.app()
    workers = cli_workers.usable(app, workers, err)
    with Interrupts(err) as stop, progress_bar("Ingesting") as update, reported_here(obj.verbose):
        try:
            notice = lambda text: err.print(safe(text))  # noqa: E731
            if dry_run:
                report = publishing.dry_run(app, to=to, progress=update, notice=notice)
            elif to is not None:
                report = publishing.send_to(app, to, progress=update, lock_wait=wait, notice=notice)
            elif workers > 1:
                report = publishing.publish(app, progress=update, lock_wait=wait, notice=notice)
                if not stop.soon.is_set():
                    report.delivery = cli_workers.deliver_with(app, obj, workers, stop, update)
            else:
                report = publishing.send(
                    app,
                    progress=update,
                    lock_wait=wait,
                    stop=stop.soon,
                    abort=stop.now,
                    notice=notice,
                )
        except KeyboardInterrupt:
            raise click.ClickException("stopped at once: nothing more was done") from None
    print_send(app, report)
    d = report.delivery
    if stop.code:
        ctx.exit(stop.code)
    if (d.failed or d.deferred) and not d.sent:
        raise click.ClickException(
            f"no message was delivered ({d.failed} failed, {d.deferred} deferred); "
            "deferred ones are retried by the next `digest send`"
        )


def print_send(app: App, report: SendReport) -> None:
    print_ingest(report.ingest, dry_run=report.dry_run)
    p = report.prepared
    if p is None:
        out.print(report.reason)
    else:
        verb = (
            "would publish"
            if report.dry_run
            else ("sent a test of" if report.issue is None else "published")
        )
        out.print(f"{verb} issue #{p.view.issue}: {safe(p.view.subject)}")
        for section in p.view.sections:
            out.print(f"  {safe(section.name)}: {len(section.papers)}")
        if report.waiting:
            limit = app.settings.digest.max_papers_per_digest
            out.print(
                f"{report.waiting:,} more pending paper(s) wait for the next issue "
                f"(at most digest.max_papers_per_digest = {limit:,} in one issue)"
            )
        out.print(f"{'to' if not report.dry_run else 'would mail'}: {recipients_line(report)}")
        if report.unselected:
            out.print(
                f"  {report.unselected:,} of them get no letter: none of the sections they "
                "chose is in this issue"
            )
    if report.files:
        out.print(f"wrote {len(report.files)} file(s) under {shown(app.settings.public_dir)}")
    d = report.delivery
    if d.sent or d.failed or d.deferred or d.skipped or d.waiting:
        where = (
            shown(app.settings.outbox_dir) if app.settings.email.transport == "maildir" else "SMTP"
        )
        counts = f"{d.sent} sent, {d.failed} failed, {d.deferred} deferred"
        extra = "".join(
            f", {n} {label}"
            for n, label in (
                (d.skipped, "skipped (unsubscribed or bounced since)"),
                (d.waiting, "waiting (retried later)"),
            )
            if n
        )
        out.print(f"delivery ({where}): {counts}{extra}")
        if d.stopped:
            out.print(d.stopped)
        for e in d.errors[:20]:
            out.print(f"  [red]{safe(e)}[/]")
        if len(d.errors) > 20:
            out.print(f"  … and {len(d.errors) - 20} more (see `digest status`)")


def recipients_line(report: SendReport, shown_at_most: int = 5) -> str:
    """The recipients in one line: a few addresses, or a count and the first three."""
    who, count = report.recipients, max(report.recipient_count, len(report.recipients))
    if not count:
        return "no recipients (add subscribers or set email.recipients)"
    if count <= shown_at_most and len(who) == count:
        return ", ".join(who)
    return f"{count:,} subscribers ({', '.join(who[:3])}, …)"
