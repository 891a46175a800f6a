"""The daemon (`digest run`), one of the three ways in: watches the dumps folder and publishes
on a schedule (APScheduler 3) through `digest.app`. No pipeline logic of its own.

May import: `digest.app` and everything below it; never the CLI or the web server (`run
--serve` gets the web server's `serve_in_thread` from digest/program.py).
"""
