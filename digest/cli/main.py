"""The command line: thin over pipeline.App. Errors are one line and a non-zero exit."""

from __future__ import annotations

import copy
import inspect
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from digest import __version__
from digest.app import App, make_app, make_reader_app
from digest.app.publishing import SendReport
from digest.cli import bounces as cli_bounces
from digest.cli import subscribers as cli_subscribers
from digest.cli import workers as cli_workers
from digest.cli.console import err, out, safe, shown
from digest.cli.interrupts import Interrupts
from digest.config import DEFAULT_CONFIG_NAME, default_toml, load_settings
from digest.errors import DigestError
from digest.fsutil import atomic_write, storage_error
from digest.ingest.files import IngestReport
from digest.logtext import escape_handlers
from digest.state import db
from digest.state.states import DumpStatus


class Obj:
    """What the group passes to its commands: the settings path and the verbosity."""

    def __init__(self, config: str | None, verbose: bool) -> None:
        self.config = config
        self.verbose = verbose

    def app(self) -> App:
        return make_app(load_settings(self.config))

    def reader_app(self) -> App:
        """An App for looking only; read-only (with a warning) when it cannot write."""
        app, why = make_reader_app(load_settings(self.config))
        if why:
            err.print(f"warning: {why}; showing the state read-only")
        return app


class DigestGroup(click.Group):
    """Turns the core's errors into one line and exit code 1 (traceback with --verbose)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            obj = ctx.obj
            if isinstance(obj, Obj) and obj.verbose:
                err.print_exception()
            raise click.ClickException(str(exc)) from None
        except BrokenPipeError:  # the reader went away (`| head -1`): a normal end
            _quiet_stdout()
            return None
        except OSError as exc:  # a file the core did not expect to fail: still one line
            obj = ctx.obj
            if isinstance(obj, Obj) and obj.verbose:
                err.print_exception()
            raise click.ClickException(str(storage_error(exc.filename or "?", exc))) from None


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that flushing what is left at exit does not
    fail a second time on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test runner's buffer)


@click.group(cls=DigestGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    type=click.Path(dir_okay=False),
    help=f"Settings file. Default: $DIGEST_CONFIG, else ./{DEFAULT_CONFIG_NAME} if present, "
    "else built-in defaults.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every step; show tracebacks on errors.")
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def main(ctx: click.Context, config: str | None, verbose: bool) -> None:
    """Turn dumps of a research-papers page into a themed newsletter.

    Drop dump files into the dumps folder; `digest send` ingests them and publishes
    the papers not yet sent as one digest: RSS/Atom/JSON feeds, a web copy, and an
    HTML e-mail to every recipient.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=verbose)],
        force=True,
    )
    escape_handlers()
    # What digest writes (the database, its locks, the log, the outbox) is for its own user:
    # folders 0700, files 0600. Public pages and feeds are written 0644 on purpose.
    os.umask(0o077)
    ctx.obj = Obj(config, verbose)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[str, int, int, str], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[what]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None, what="")

        def update(stage: str, done: int, total: int, what: str) -> None:
            what = safe(what)
            bar.update(task, description=stage, completed=done, total=total, what=what)

        yield update


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.argument("path", type=click.Path(dir_okay=False), default=DEFAULT_CONFIG_NAME)
def init(path: str, force: bool) -> None:
    """Write a commented settings file (default ./digest.toml) with every setting
    and its default value."""
    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; use --force to overwrite it")
    atomic_write(target, default_toml())
    out.print(f"wrote {target}: edit it, then run `digest send --dry-run`")


@contextmanager
def reported_here(verbose: bool) -> Iterator[None]:
    """While a command prints the ingest report itself (each failed dump and each parse
    warning once, under its file), the ingest log's copies of those lines are held back
    (shown with --verbose)."""
    logger = logging.getLogger("digest.ingest.files")
    before = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...]) -> None:
    """Read new dump files into the state without publishing.

    PATHS are dump files; without them, every file in the dumps folder. A file
    already ingested (same content) is skipped; one that cannot be parsed is
    recorded as failed and the others carry on. Exits 1 when every new file failed.
    """
    obj: Obj = ctx.obj
    app = obj.app()
    with progress_bar("Ingesting") as update, reported_here(obj.verbose):
        report = app.ingest(list(paths) or None, update, lambda text: err.print(safe(text)))
    print_ingest(report)
    fresh = report.fresh
    if fresh and len(report.failed) == len(fresh):
        ctx.exit(1)  # each failure is on its own line above


def print_ingest(report: IngestReport, *, dry_run: bool = False) -> None:
    """One line per dump: what was read (or, for a dry run that stores nothing, what
    would be), failed, refused or still being written, and its parse warnings."""
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


@main.command()
@click.pass_obj
def status(obj: Obj) -> None:
    """Show papers seen / pending / sent, dumps ingested and failed, and the last digest."""
    app = obj.reader_app()
    s = app.status()
    missing = "" if app.has_state() else " (not created yet: `digest send` or `digest ingest`)"
    out.print(f"state:    {db.shown_url(app.settings.database_url)}{missing}")
    out.print(f"papers:   {s.papers_seen} seen, {s.papers_pending} pending, {s.papers_sent} sent")
    out.print(f"dumps:    {s.dumps_ingested} ingested, {s.dumps_failed} failed")
    for path, error in s.failed:
        out.print(f"  failed: {safe(error or path)}")
    if s.last_listing_date:
        out.print(f"newest listing: {s.last_listing_date:%Y-%m-%d}")
    print_schedule(app)
    cli_workers.print_workers(app, out)
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


def print_schedule(app: App) -> None:
    holder, runs = app.schedule()
    out.print(f"daemon:   {'running (' + holder + ')' if holder else 'not running'}")
    if runs:
        when = runs[0].at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        out.print(f"next run: {when}{'' if holder else ' (when the daemon is running)'}")


def _no_alembic_chatter(record: logging.LogRecord) -> bool:
    """Alembic's notes on how it talks to the database, at every start, are not events
    (its "Running upgrade" lines, when the schema changes, are)."""
    if record.name.startswith("alembic") and record.levelno <= logging.INFO:
        return str(record.msg).startswith("Running upgrade")
    return True


def setup_daemon_logging(verbose: bool, log_file: Path | None) -> None:
    """One line per event with a timestamp, to stderr and optionally a file."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(_no_alembic_chatter)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=handlers, force=True
    )
    escape_handlers()
    logging.getLogger("apscheduler").setLevel(logging.INFO if verbose else logging.WARNING)


@main.command()
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
    prepared, reason = obj.app().preview()
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


@main.command()
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
    obj: Obj = ctx.obj
    app = obj.app()
    workers = cli_workers.usable(app, workers, err)
    with Interrupts(err) as stop, progress_bar("Ingesting") as update, reported_here(obj.verbose):
        try:
            notice = lambda text: err.print(safe(text))  # noqa: E731
            if dry_run:
                report = app.dry_run(to=to, progress=update, notice=notice)
            elif to is not None:
                report = app.send_to(to, progress=update, lock_wait=wait, notice=notice)
            elif workers > 1:
                report = app.publish(progress=update, lock_wait=wait, notice=notice)
                if not stop.soon.is_set():
                    report.delivery = cli_workers.deliver_with(app, obj, workers, stop, update)
            else:
                report = app.send(
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


from digest.cli.sections import areas, themes  # noqa: E402  (the commands live in their module)


def old_name(command: click.Command, old: str) -> click.Command:
    """``command`` again under its old name, saying so in --help (old scripts keep working)."""
    again = copy.copy(command)
    again.name = old
    again.short_help = f"Old name of `digest {command.name}` (still works)."
    help_text = inspect.cleandoc(command.help or "")
    again.help = f"Old name of `digest {command.name}`, kept working.\n\n{help_text}"
    return again


topics = copy.copy(themes)  # what readers pick are "topics"; the command keeps its code
topics.name = "topics"
main.add_command(topics)
main.add_command(old_name(topics, "themes"))
main.add_command(areas)
main.add_command(cli_workers.worker)
main.add_command(cli_subscribers.subscribers)
main.add_command(cli_subscribers.unsubscribe)
main.add_command(cli_bounces.bounces)
