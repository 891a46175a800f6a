"""The public files (feeds, /themes/<slug>.xml, /sections/<slug>.html, /archive/<n>.html,
/archive/page-<n>.html, the index), with ETag, Last-Modified and 304s, compressed or not.

Only known shapes of path are served, each checked to resolve inside public/, so no
other file can be read through the server.

Gzip costs nothing per request: publishing writes ``<file>.gz`` beside each file with
the file's own mtime (publish/public.py), and a client that accepts gzip gets it as it
is, with ``Content-Encoding: gzip`` and an ETag of its own (``"…-gzip"``). A ``.gz``
whose mtime is not its file's (stale: the file was rewritten since, or by something
else) is never served; the file is then compressed here once per version (size,
mtime), in the thread pool, and kept. Every answer says ``Vary: Accept-Encoding``.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from digest.urls import archive_page_path, issue_path, section_page_path
from digest.web.site import Site

__all__ = ["FEEDS", "SLUG", "PublicFiles", "accepts_gzip", "feed_routes", "routes"]

FEEDS = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
HTML = "text/html; charset=utf-8"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
GZIP_LEVEL = 6  # only when the .gz beside a file is missing or stale: once per version


@dataclass(frozen=True)
class Version:
    """One version of a file as served: its bytes (plain or gzip), ETag and mtime."""

    size: int
    mtime_ns: int
    etag: str
    data: bytes


@dataclass
class FileCache:
    """Each file's bytes and ETag by (path, size, mtime): a feed is read and hashed once
    per change, not per poll; a missing .gz compressed once per version."""

    plain: dict[Path, Version] = field(default_factory=dict)
    zipped: dict[Path, Version] = field(default_factory=dict)

    def get(self, path: Path) -> Version:
        st = path.stat()
        hit = self.plain.get(path)
        if hit is None or (hit.size, hit.mtime_ns) != (st.st_size, st.st_mtime_ns):
            data = path.read_bytes()
            hit = Version(st.st_size, st.st_mtime_ns, _etag(data), data)
            self.plain[path] = hit
        return hit

    def get_gzip(self, path: Path, plain: Version) -> Version:
        """The gzip version of ``plain``: the .gz beside it when its mtime is the file's,
        else ``plain`` compressed here (once per version)."""
        beside = path.with_name(path.name + ".gz")
        try:
            st = beside.stat()
        except OSError:
            st = None
        if st is not None and st.st_mtime_ns == plain.mtime_ns:
            hit = self.zipped.get(beside)
            if hit is None or (hit.size, hit.mtime_ns) != (st.st_size, st.st_mtime_ns):
                data = beside.read_bytes()
                hit = Version(st.st_size, st.st_mtime_ns, _etag(data, "-gzip"), data)
                self.zipped[beside] = hit
            return hit
        hit = self.zipped.get(path)
        if hit is None or (hit.size, hit.mtime_ns) != (plain.size, plain.mtime_ns):
            data = gzip.compress(plain.data, GZIP_LEVEL, mtime=0)
            hit = Version(plain.size, plain.mtime_ns, _etag(data, "-gzip"), data)
            self.zipped[path] = hit
        return hit


def _etag(data: bytes, suffix: str = "") -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + suffix + '"'


def accepts_gzip(request: Request) -> bool:
    """True when Accept-Encoding lists gzip (or *) with a q above 0."""
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower().removeprefix("q=").strip()
            try:
                return not q or float(q) > 0
            except ValueError:
                return False
    return False


def not_modified(request: Request, etag: str, mtime: float) -> bool:
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


class PublicFiles:
    """The routes of the public files (plain functions: Starlette runs them in its
    thread pool, so the disk is never read on the event loop)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.cache = FileCache()

    def inside_public(self, relative: str) -> Path | None:
        """The file under public/ (symlinks resolved), or None if it leaves public/."""
        root = self.site.public.resolve()
        try:
            path = (root / relative).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        return path if path.is_file() and path.is_relative_to(root) else None

    def response(self, request: Request, relative: str, media_type: str) -> Response:
        path = self.inside_public(relative)
        if path is None:
            return self.site.not_found(request)
        version = self.cache.get(path)
        headers = {
            "last-modified": email.utils.formatdate(version.mtime_ns / 1e9, usegmt=True),
            "cache-control": "public, max-age=300",
            "vary": "Accept-Encoding",
        }
        if accepts_gzip(request):
            version = self.cache.get_gzip(path, version)
            headers["content-encoding"] = "gzip"
        headers["etag"] = version.etag
        if not_modified(request, version.etag, version.mtime_ns / 1e9):
            return Response(status_code=304, headers=headers)
        return Response(version.data, media_type=media_type, headers=headers)

    def feed(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in FEEDS:
            return self.site.not_found(request)
        return self.response(request, name, FEEDS[name])

    def section_feed(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        if not SLUG.match(slug):
            return self.site.not_found(request)
        return self.response(request, f"themes/{slug}.xml", FEEDS["feed.xml"])

    def section_page(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        if not SLUG.match(slug):
            return self.site.not_found(request)
        return self.response(request, section_page_path(slug), HTML)

    def issue(self, request: Request) -> Response:
        return self.response(request, issue_path(request.path_params["number"]), HTML)

    def archive_page(self, request: Request) -> Response:
        return self.response(request, archive_page_path(request.path_params["number"]), HTML)

    def issue_short(self, request: Request) -> Response:
        return RedirectResponse("/" + issue_path(request.path_params["number"]), status_code=301)


def routes(site: Site) -> list[Route]:
    """The file routes but the feeds' (``feed_routes``: matching any /<name>, they must
    come after every other route)."""
    files = PublicFiles(site)
    return [
        Route("/themes/{slug}.xml", files.section_feed),
        Route("/sections/{slug}.html", files.section_page),
        Route("/archive/{number:int}.html", files.issue),
        Route("/archive/page-{number:int}.html", files.archive_page),
        Route("/archive/{number:int}", files.issue_short),
    ]


def feed_routes(site: Site) -> list[Route]:
    return [Route("/{name}", PublicFiles(site).feed)]
