"""The `digest` command group: its options, the one-line errors, and its subcommands,
each loaded from its module only when it is run or listed (click's lazy subcommands), so
that `digest --help` or `digest status` imports only what it uses. The commands live in
publishing.py (ingest, preview, send), status.py, sections.py (topics, areas),
subscribers.py (subscribers, unsubscribe), workers.py (worker) and bounces.py."""

from __future__ import annotations

import importlib
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.cli.console import err, out
from digest.cli.context import Obj
from digest.errors import DigestError
from digest.fsutil import atomic_write, storage_error
from digest.logtext import escape_handlers

DEFAULT_CONFIG_NAME = "digest.toml"  # the settings file looked for in the current folder

# command name -> "module:attribute", imported when the command is first needed
LAZY_COMMANDS = {
    "ingest": "digest.cli.publishing:ingest",
    "preview": "digest.cli.publishing:preview",
    "send": "digest.cli.publishing:send",
    "status": "digest.cli.status:status",
    "topics": "digest.cli.sections:topics",
    "themes": "digest.cli.sections:themes_old",
    "areas": "digest.cli.sections:areas",
    "worker": "digest.cli.workers:worker",
    "subscribers": "digest.cli.subscribers:subscribers",
    "unsubscribe": "digest.cli.subscribers:unsubscribe",
    "bounces": "digest.cli.bounces:bounces",
}


class DigestGroup(click.Group):
    """Loads its subcommands lazily (`LAZY_COMMANDS`, then those added by a program) and
    turns the core's errors into one line and exit code 1 (traceback with --verbose)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, _, attribute = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
            self.commands[cmd_name] = command
        return super().get_command(ctx, cmd_name)

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
    from rich.logging import RichHandler

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


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.argument("path", type=click.Path(dir_okay=False), default=DEFAULT_CONFIG_NAME)
def init(path: str, force: bool) -> None:
    """Write a commented settings file (default ./digest.toml) with every setting
    and its default value."""
    target = Path(path)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; use --force to overwrite it")
    from digest.config import default_toml

    atomic_write(target, default_toml())
    out.print(f"wrote {target}: edit it, then run `digest send --dry-run`")
