"""`digest serve`: the app factory (routes, middleware, error pages) and the uvicorn
server, run on its own or in a thread of the daemon (`digest run --serve`).

The routes are one list per module, in order (``ROUTES``): the index and search
(search.py), the public files (files.py), the subscriber pages (subscribers.py), and
last the feeds, whose ``/{name}`` would match any other page. A module of new pages
adds its ``routes(site)`` to ``ROUTES``. Every answer carries a strict
Content-Security-Policy (middleware.py).

The event loop never waits on the disk or the database: the routes are plain functions,
which Starlette runs in its thread pool, or hand their work to `run_in_threadpool`; the
server reads the state only through `App`.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.routing import Route

from digest.app import App, publishing
from digest.errors import ConfigError, StateBusy
from digest.web import feedback, files, search, subscribers
from digest.web.middleware import busy, middleware
from digest.web.site import Site

__all__ = [
    "ROUTES",
    "Serving",
    "address_mismatch",
    "create_app",
    "listen",
    "make_server",
    "serve_in_thread",
]

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}  # this machine

# each module's routes, in the order they are matched (files.feed_routes: always last)
ROUTES: list[Callable[[Site], list[Route]]] = [
    search.routes,
    feedback.reader_routes,  # feedback, private feeds, a reader's own data
    files.routes,
    subscribers.routes,
]


def create_app(app: App) -> Starlette:
    site = Site(app)
    routes = [route for module_routes in ROUTES for route in module_routes(site)]
    return Starlette(
        routes=[*routes, *files.feed_routes(site)],
        middleware=middleware(),
        exception_handlers={
            404: lambda request, exc: site.not_found(request),
            StateBusy: busy,
        },
    )


def make_server(app: App, host: str | None = None, port: int | None = None) -> Any:
    """A uvicorn server for the site (run() blocks; should_exit = True stops it)."""
    import uvicorn

    web = app.settings.web
    config = uvicorn.Config(
        create_app(app),
        host=host or web.host,
        port=port if port is not None else web.port,
        log_level="warning",
        # no handlers of uvicorn's own: its records go to ours, escaped to one line each
        # (logtext.OneLine) like every other record; a request line is outside text
        log_config=None,
        access_log=False,  # unsubscribe URLs carry tokens: never log paths
        server_header=False,
        proxy_headers=False,  # the client's address: client_address() and web.trusted_proxies
    )
    return uvicorn.Server(config)


@dataclass(frozen=True)
class Serving:
    """The web server running in a thread of this process (`digest run --serve`)."""

    host: str
    port: int
    mismatch: str  # address_mismatch(), "" when the pages link here
    server: Any
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(app: App) -> Serving:
    """Listen (a busy port stops the start in one line), bring the public files in step
    (pages and feeds follow a changed base_url now), then serve in a daemon thread."""
    server = make_server(app)
    sock = listen(server)
    publishing.publish_files(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="web", daemon=True
    )
    thread.start()
    cfg = server.config
    mismatch = address_mismatch(app.settings.base_url, cfg.host, cfg.port)
    return Serving(cfg.host, cfg.port, mismatch, server, thread)


def listen(server: Any) -> socket.socket:
    """The server's listening socket, bound now (pass it to ``server.run(sockets=[…])``):
    a busy port or an address not of this machine is one ConfigError line, before
    anything says "serving"."""
    cfg = server.config
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say so, and without
    # it a keep-alive answer of a few KB waited 40 ms for a delayed ACK (Nagle)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((cfg.host, cfg.port))
    except OSError as exc:
        sock.close()
        why = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            why = "the port is in use (another `digest serve`, or another program)"
        raise ConfigError(
            f"cannot listen on {cfg.host}:{cfg.port}: {why}",
            hint="choose another with --port (or web.port), and set digest.base_url to match",
        ) from None
    sock.set_inheritable(True)
    return sock


def address_mismatch(base_url: str, host: str, port: int) -> str:
    """One line when the pages (which link to digest.base_url, and whose sign-up form
    may post only there) are served at another address on this machine; "" when they
    match, or when base_url is a public address (a reverse proxy in front)."""
    url = urlsplit(base_url)
    linked_host = url.hostname or ""
    linked_port = url.port or (443 if url.scheme == "https" else 80)
    if linked_host not in LOOPBACK and linked_host != host:
        return ""
    same_host = linked_host == host or (linked_host in LOOPBACK and host in LOOPBACK)
    if same_host and linked_port == port:
        return ""
    here = f"http://{'localhost' if host in LOOPBACK else host}:{port}"
    return (
        f"the pages link to {base_url} (digest.base_url) but this server listens on "
        f"{host}:{port}, where links and the sign-up form fail; set base_url = "
        f'"{here}" in digest.toml (or DIGEST_DIGEST_BASE_URL), or serve with '
        f"--port {linked_port}"
    )
