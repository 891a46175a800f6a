"""The command line, one of the three ways in (with web/ and daemon/): thin click commands over
`digest.app.App` that turn the core's exceptions into one line and an exit code.

Owns: argument parsing, output formatting. May import: everything below it (app and the stages);
nothing imports it but
digest/program.py, which plugs in `run` (the daemon) and `serve` (the web server): the CLI
imports neither.
"""

from digest.cli.main import main

__all__ = ["main"]
