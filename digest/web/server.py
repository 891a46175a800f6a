"""`digest serve`: the feeds, the archive and unsubscribe over HTTP (Starlette + uvicorn).

Only known shapes of path are served (feeds, /themes/<slug>.xml, /sections/<slug>.html,
/archive/<n>.html, /archive/page-<n>.html),
each checked to resolve inside public/, so no other file can be read through the
server. Every response carries a strict Content-Security-Policy.

The event loop never waits on the disk or the database: the routes are plain functions,
which Starlette runs in its thread pool, and the one that must await the request body
(preferences) hands its database work to `run_in_threadpool`, and builds nothing that
reads the state on the loop itself. No page that only reads takes the write lock (the
form key is read once, not written), so a publish, an ingest or an import holding
SQLite's write lock delays only the requests that write: a /subscribe post or a saved
preferences form, never a feed, a confirmation link or the preferences page.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import hmac
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.app import App
from digest.errors import ConfigError, DeliveryError, StateBusy
from digest.mail.subscribers import SubscriberError
from digest.state.states import SubscriberStatus
from digest.urls import archive_page_path, issue_path, section_page_path
from digest.web.feedback import reader_context, reader_routes

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}  # this machine

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # token URLs never leak to other sites
    "x-frame-options": "DENY",
}
FEEDS = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


class SecurityHeaders:
    """Adds the CSP and friends to every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])]
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass
class FileCache:
    """ETags by (path, size, mtime): a feed is hashed once per change, not per poll."""

    entries: dict[Path, tuple[int, int, str, bytes]]

    def get(self, path: Path) -> tuple[str, bytes, float]:
        st = path.stat()
        hit = self.entries.get(path)
        if hit is None or hit[:2] != (st.st_size, st.st_mtime_ns):
            data = path.read_bytes()
            etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
            hit = (st.st_size, st.st_mtime_ns, etag, data)
            self.entries[path] = hit
        return hit[2], hit[3], st.st_mtime


class Site:
    """The routes, over one pipeline App."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.public = app.settings.public_dir
        self.cache = FileCache({})

    # files ------------------------------------------------------------------

    def inside_public(self, relative: str) -> Path | None:
        """The file under public/ (symlinks resolved), or None if it leaves public/."""
        root = self.public.resolve()
        try:
            path = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return path if path.is_file() and path.is_relative_to(root) else None

    def file_response(self, request: Request, relative: str, media_type: str) -> Response:
        path = self.inside_public(relative)
        if path is None:
            return self.not_found(request)
        etag, data, mtime = self.cache.get(path)
        headers = {
            "etag": etag,
            "last-modified": email.utils.formatdate(mtime, usegmt=True),
            "cache-control": "public, max-age=300",
        }
        if _not_modified(request, etag, mtime):
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=media_type, headers=headers)

    def feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in FEEDS:
            return self.not_found(request)
        return self.file_response(request, name, FEEDS[name])

    def theme_feed(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        if not SLUG.match(slug):
            return self.not_found(request)
        return self.file_response(request, f"themes/{slug}.xml", FEEDS["feed.xml"])

    def section_page(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        if not SLUG.match(slug):
            return self.not_found(request)
        return self.file_response(request, section_page_path(slug), "text/html; charset=utf-8")

    def issue(self, request: Request) -> Response:
        number = request.path_params["number"]
        return self.file_response(request, issue_path(number), "text/html; charset=utf-8")

    def archive_page(self, request: Request) -> Response:
        page = archive_page_path(request.path_params["number"])
        return self.file_response(request, page, "text/html; charset=utf-8")

    def issue_short(self, request: Request) -> Response:
        return RedirectResponse("/" + issue_path(request.path_params["number"]), status_code=301)

    def index(self, request: Request) -> Response:
        query = request.query_params.get("q", "").strip()[:200]
        if not query:
            return self.file_response(request, "index.html", "text/html; charset=utf-8")
        hits = self.app.search_archive(query)
        return HTMLResponse(self.render("search.html.j2", query=query, hits=hits))

    # pages ------------------------------------------------------------------

    def render(self, name: str, **context: Any) -> str:
        s = self.app.settings
        return self.app.renderer.page(
            name,
            site_title=s.digest.title,
            base_url=s.base_url,
            feed_url=f"{s.base_url}/feed.xml",
            atom_url=f"{s.base_url}/atom.xml",
            archive_url=f"{s.base_url}/",
            **context,
        )

    def not_found(self, request: Request, what: str = "This page does not exist.") -> Response:
        return HTMLResponse(self.render("404.html.j2", message=what), status_code=404)

    def missing(self, request: Request) -> Response:
        return self.not_found(request)


def _not_modified(request: Request, etag: str, mtime: float) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        return etag in [t.strip().removeprefix("W/") for t in match.split(",")] or match == "*"
    since = request.headers.get("if-modified-since")
    if since:
        try:
            when = email.utils.parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False
        return int(mtime) <= when
    return False


def create_app(app: App) -> Starlette:
    site = Site(app)
    routes = [
        Route("/", site.index),
        Route("/themes/{slug}.xml", site.theme_feed),
        Route("/sections/{slug}.html", site.section_page),
        Route("/archive/{number:int}.html", site.issue),
        Route("/archive/page-{number:int}.html", site.archive_page),
        Route("/archive/{number:int}", site.issue_short),
        *extra_routes(site),
        Route("/{name}", site.feed),  # last: it would match /subscribe too
    ]
    web = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(GZipMiddleware, minimum_size=500)],
        exception_handlers={
            404: lambda request, exc: site.not_found(request),
            StateBusy: busy,
        },
    )
    return web


def busy(request: Request, exc: Exception) -> Response:
    """The state stayed locked past the busy timeout: nothing changed; ask to retry."""
    log.warning("answered 503: %s", exc)
    return PlainTextResponse(
        "The service is busy; nothing was changed. Please try again in a few seconds.",
        status_code=503,
        headers={"Retry-After": "5", "cache-control": "no-store"},
    )


def extra_routes(site: Site) -> list[Route]:
    """The subscriber pages: subscribing (double opt-in), one-click unsubscribe and
    topic preferences."""
    pages = SubscriberPages(site)
    signup = SignupPages(site)
    return [
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", pages.preferences, methods=["GET", "POST"]),
        Route("/subscribe", signup.subscribe, methods=["GET", "POST"]),
        Route("/subscribe/confirm/{token}", signup.confirm, methods=["GET", "POST"]),
        *reader_routes(site),  # web/feedback.py: feedback, private feeds, own data
    ]


def same_site(request: Request, base_url: str) -> bool:
    """False when the browser says the post comes from another site (Sec-Fetch-Site,
    else Origin). ``Origin: null`` (a sandboxed frame, a data: or file: page, a redirect
    from elsewhere) is not this site. Clients that send neither are let through."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    allowed = {base_url, f"{request.url.scheme}://{request.url.netloc}"}
    return origin.rstrip("/") in allowed


def client_address(request: Request, trusted_proxies: Sequence[str]) -> str:
    """The address the per-address limits count. A request from one of web.trusted_proxies
    counts against the rightmost X-Forwarded-For entry that is not itself a trusted proxy
    (the one our proxy wrote; entries left of it come from the client and prove nothing).
    From anyone else the header is ignored: any client can write one."""
    nets = [ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies]

    def trusted(host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in net for net in nets)

    peer = request.client.host if request.client else ""
    if not trusted(peer):
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop if _address(hop) is not None else peer
    return peer


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


MAX_FORM_AREAS = 200  # checkboxes taken from one subscribe form


class SignupPages:
    """/subscribe: GET shows the form, POST sends a confirmation e-mail (the limits in
    mail/signup.py apply); /subscribe/confirm/<token>: GET asks, POST confirms."""

    def __init__(self, site: Site) -> None:
        self.site = site

    async def subscribe(self, request: Request) -> Response:
        app = self.site.app
        if request.method == "GET":
            return self._page("subscribe.html.j2", state="form", **await self._topics())
        if not same_site(request, app.settings.base_url):
            return PlainTextResponse("Forbidden: cross-site form post", status_code=403)
        form = await request.form()
        address = str(form.get("email", ""))[:320]
        themes = [str(v)[:100] for v in form.getlist("theme")][:MAX_FORM_AREAS]
        ip = client_address(request, app.settings.web.trusted_proxies)
        try:
            outcome = await run_in_threadpool(app.request_subscription, address, themes, ip)
        except SubscriberError as exc:
            error = f"Please check the form: {exc.message}"
            return self._page(
                "subscribe.html.j2", 400, state="form", address=address,
                chosen=set(themes), error=error, **await self._topics(),
            )  # fmt: skip
        except DeliveryError:
            message = "The confirmation e-mail could not be sent just now. Please try again."
            return self._page("404.html.j2", 503, message=message)
        if outcome.outcome == "busy":
            return self._page("subscribe.html.j2", 429, state="busy")
        return self._page("subscribe.html.j2", state="sent", address=outcome.address)

    async def confirm(self, request: Request) -> Response:
        app = self.site.app
        token = request.path_params["token"]
        if request.method == "POST":
            if not same_site(request, app.settings.base_url):
                return PlainTextResponse("Forbidden: cross-site form post", status_code=403)
            result = await run_in_threadpool(app.confirm_subscription, token)
        else:
            result = await run_in_threadpool(app.peek_subscription, token)
        if result.state == "unknown":
            return self.site.not_found(request, "This confirmation link is not valid.")
        names = await run_in_threadpool(app.theme_names, result.themes)
        status = 410 if result.state == "expired" else 200
        return self._page(
            "confirm.html.j2", status, state=result.state, address=result.address,
            token=token, themes=names,
        )  # fmt: skip

    async def _topics(self) -> dict[str, Any]:
        """The topics a reader may pick: grouped (groups) and flat (areas, for older
        template overrides)."""
        app = self.site.app
        areas = await run_in_threadpool(app.theme_choices)
        return {"areas": areas, "groups": await run_in_threadpool(app.topic_groups)}

    def _page(self, name: str, status: int = 200, **context: Any) -> Response:
        defaults = {
            "areas": [], "groups": [], "chosen": set(), "address": "", "error": "",
            "confirm_hours": self.site.app.settings.subscribe.confirm_hours,
        }  # fmt: skip
        html = self.site.render(name, **{**defaults, **context})
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


class SubscriberPages:
    """Unsubscribe (RFC 8058 one-click: POST, no login, no cookie; GET only asks) and
    preferences (protected against cross-site posts by an HMAC form token and the
    browser's Origin / Sec-Fetch-Site headers)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.book = site.app.subscribers()

    def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        who = self.book.lookup(token)
        if who is None:
            return self.site.not_found(request, "This unsubscribe link is not valid.")
        if request.method == "GET":
            state = "already" if who.status == SubscriberStatus.UNSUBSCRIBED else "confirm"
            return self._page("unsubscribe.html.j2", state=state, address=who.address, token=token)
        self.book.unsubscribe(token)  # idempotent; the body (List-Unsubscribe=One-Click) is
        return self._page("unsubscribe.html.j2", state="done", address=who.address, token=token)

    async def preferences(self, request: Request) -> Response:
        """Async only to read the form; every database and template step runs in the
        thread pool."""
        token = request.path_params["token"]
        form = await request.form() if request.method == "POST" else None
        return await run_in_threadpool(self._preferences, request, token, form)

    def _preferences(self, request: Request, token: str, form: FormData | None) -> Response:
        who = self.book.lookup(token)
        if who is None:
            return self.site.not_found(request, "This preferences link is not valid.")
        saved = False
        if form is not None:
            if not self._same_site(request) or not hmac.compare_digest(
                str(form.get("csrf", "")), self._csrf(token)
            ):
                return PlainTextResponse("Forbidden: cross-site form post", status_code=403)
            try:
                who = self.book.choose_themes(token, [str(v) for v in form.getlist("theme")]) or who
            except SubscriberError as exc:
                return PlainTextResponse(f"Bad request: {exc.message}", status_code=400)
            saved = True
        return self._page(
            "preferences.html.j2",
            address=who.address,
            chosen=self.site.app.chosen_topics(who.themes),
            themes=self._themes(),
            groups=self.site.app.topic_groups(),
            token=token,
            csrf=self._csrf(token),
            saved=saved,
            **reader_context(self.site, token, request.query_params.get("done", "")),
        )

    def _page(self, name: str, **context: Any) -> Response:
        headers = {"cache-control": "no-store"}
        return HTMLResponse(self.site.render(name, **context), headers=headers)

    def _themes(self) -> list[tuple[str, str]]:
        return self.site.app.theme_choices()

    def _csrf(self, token: str) -> str:
        key = self.site.app.web_secret()
        return hmac.new(key, b"preferences:" + token.encode(), hashlib.sha256).hexdigest()

    def _same_site(self, request: Request) -> bool:
        """See same_site(); clients that send neither header still need the form's HMAC."""
        return same_site(request, self.site.app.settings.base_url)


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
    app.publish_files()
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
    sock = socket.socket(family, socket.SOCK_STREAM)
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
