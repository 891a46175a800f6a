"""The web server (`digest serve`), one of the three ways in: feeds, archive, search,
unsubscribe and preferences over HTTP (Starlette + uvicorn), thin over `digest.app`.

Modules: server (the app factory, the route list ``ROUTES``, uvicorn, the daemon's
thread), middleware (security headers, gzip of the pages made per request, 503 when
busy), files (the public files: ETag, 304s, the .gz beside each file), search (the
index and ``/?q=``), subscribers (subscribe, confirm, unsubscribe, preferences), site
(the App and the pages every route renders), origin (whether a post comes from this
site, the client address the limits count), feedback ("more / less like this", a
reader's own data) and private_feed (`/feeds/<token>.xml`). New pages: a module with
``routes(site) -> list[Route]``, added to ``server.ROUTES``.

May import: `digest.app` and everything below it; never the CLI or the daemon.
"""
