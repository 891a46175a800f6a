"""`python -m digest.cli`: the same as the `digest` command (the program, with the daemon
and the web server plugged in: see digest/program.py)."""

import runpy

runpy.run_module("digest", run_name="__main__")
