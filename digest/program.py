"""The program: the command line with the daemon (`digest run`) and the web server
(`digest serve`) plugged in. The three ways in (cli/, daemon/, web/) are independent of
each other; this is the one module that sees them all, and what the `digest` command and
`python -m digest` run. The daemon and the web server are imported when their command
runs, never for `--help` or another command.
"""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli.console import err, out, shown
from digest.cli.context import Obj, setup_daemon_logging
from digest.cli.main import main

__all__ = ["main"]


@click.command()
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also append the log to this file (default: schedule.log_file).",
)
@click.option(
    "--serve",
    "with_server",
    is_flag=True,
    help="Also run the web server (`digest serve`) in this process.",
)
@click.pass_obj
def run(obj: Obj, log_file: Path | None, with_server: bool) -> None:
    """Run the daemon: watch the dumps folder and publish on the schedule.

    New dumps are ingested once complete (size and mtime unchanged for
    schedule.settle_seconds; *.part, *.tmp and dotfiles are ignored). Publishing
    follows schedule.cron in schedule.timezone, or, with schedule.mode =
    "on_new_dump", happens schedule.debounce_seconds after the last new dump. A run
    missed while the daemon was down fires once on restart. Only one daemon runs
    per state. SIGTERM or Ctrl-C finishes the job in progress and exits 0.
    """
    from digest.daemon.scheduler import Daemon
    from digest.web.server import serve_in_thread

    app = obj.app()
    configured = app.settings.schedule.log_file
    if log_file is None and configured:
        log_file = app.settings.path(configured)
    setup_daemon_logging(obj.verbose, log_file)
    Daemon(app).run(serve=serve_in_thread if with_server else None)


@click.command()
@click.option("--host", help="Address to listen on (default: web.host).")
@click.option("--port", type=int, help="Port to listen on (default: web.port).")
@click.pass_obj
def serve(obj: Obj, host: str | None, port: int | None) -> None:
    """Serve the feeds, the archive (with search) and the subscriber pages over HTTP.

    Routes: /feed.xml, /atom.xml, /feed.json, /themes/<slug>.xml, / (the archive
    index; ?q= searches every published paper), /archive/<n>.html,
    /unsubscribe/<token> and /preferences/<token>. Put it behind a reverse proxy
    for TLS; digest.base_url must be the public address.
    """
    from digest.app import publishing
    from digest.web.server import address_mismatch, listen, make_server

    app = obj.app()
    server = make_server(app, host, port)
    sock = listen(server)  # a busy port: one line, before anything says "serving"
    if app.has_state():
        publishing.publish_files(app)  # pages and feeds follow a changed title or base_url now
    cfg, base = server.config, app.settings.base_url
    where = f"{shown(app.settings.public_dir)} at {base}/"
    out.print(f"serving {where} (listening on {cfg.host}:{cfg.port})")
    mismatch = address_mismatch(base, cfg.host, cfg.port)
    if mismatch:
        err.print(f"warning: {mismatch}")
    server.run(sockets=[sock])


main.add_command(run)
main.add_command(serve)
