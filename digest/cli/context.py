"""What every command shares: the object the group passes (settings path, verbosity,
the App built on demand), the progress bar, the ingest report's log held back, old
command names, and the daemon's log set-up. Light to import: the App and the stages are
imported when a command runs, never when --help is shown."""

from __future__ import annotations

import copy
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli.console import err, safe
from digest.logtext import escape_handlers

if TYPE_CHECKING:
    from digest.app import App


class Obj:
    """What the group passes to its commands: the settings path and the verbosity."""

    def __init__(self, config: str | None, verbose: bool) -> None:
        self.config = config
        self.verbose = verbose

    def app(self) -> App:
        from digest.app import make_app
        from digest.config import load_settings

        return make_app(load_settings(self.config))

    def reader_app(self) -> App:
        """An App for looking only; read-only (with a warning) when it cannot write."""
        from digest.app import make_reader_app
        from digest.config import load_settings

        app, why = make_reader_app(load_settings(self.config))
        if why:
            err.print(f"warning: {why}; showing the state read-only")
        return app


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[str, int, int, str], None] | None]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not err.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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


def old_name(command: click.Command, old: str) -> click.Command:
    """``command`` again under its old name, saying so in --help (old scripts keep working)."""
    again = copy.copy(command)
    again.name = old
    again.short_help = f"Old name of `digest {command.name}` (still works)."
    help_text = inspect.cleandoc(command.help or "")
    again.help = f"Old name of `digest {command.name}`, kept working.\n\n{help_text}"
    return again


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
