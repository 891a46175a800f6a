"""The web server (`digest serve`), one of the three ways in: feeds, archive, search,
unsubscribe and preferences over HTTP (Starlette + uvicorn), thin over `digest.app`.

May import: `digest.app` and everything below it; never the CLI or the daemon.
"""
