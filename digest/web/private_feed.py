"""A reader's private feed, /feeds/<feed-token>.xml: built from the state on request
(mail/reader_desk.py), with the public feeds' caching (ETag, Last-Modified, 304) but
``private`` (a shared cache must not keep one reader's feed), and gzip when the client
accepts it (compressed here, with an ETag of its own; the server's gzip middleware
leaves an encoded body alone). An unknown token is the plain 404 page.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.app.readers import ReaderDesk

if TYPE_CHECKING:
    from digest.web.site import Site

RSS = "application/rss+xml; charset=utf-8"


class PrivateFeedRoute:
    def __init__(self, site: Site, desk: ReaderDesk) -> None:
        self.site, self.desk = site, desk

    async def serve(self, request: Request) -> Response:
        return await run_in_threadpool(self._serve, request)

    def _serve(self, request: Request) -> Response:
        feed = self.desk.private_feed(request.path_params["token"])
        if feed is None:
            return self.site.not_found(request)
        zipped = accepts_gzip(request)
        etag = '"' + hashlib.sha256(feed.body).hexdigest()[:32] + ('-gzip"' if zipped else '"')
        headers = {"etag": etag, "cache-control": "private, max-age=300",
                   "vary": "Accept-Encoding"}  # fmt: skip
        mtime = feed.updated.timestamp() if feed.updated else 0.0
        if feed.updated is not None:
            headers["last-modified"] = email.utils.formatdate(mtime, usegmt=True)
        if not_modified(request, etag, mtime if feed.updated else None):
            return Response(status_code=304, headers=headers)
        body = feed.body
        if zipped:
            body = gzip.compress(body, compresslevel=6, mtime=0)
            headers["content-encoding"] = "gzip"
        return Response(body, media_type=RSS, headers=headers)


def accepts_gzip(request: Request) -> bool:
    """Whether Accept-Encoding names gzip (not with q=0)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "x-gzip"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def not_modified(request: Request, etag: str, mtime: float | None) -> bool:
    """If-None-Match (wins when sent), else If-Modified-Since."""
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = [t.strip().removeprefix("W/") for t in match.split(",")]
        return etag in tags or match.strip() == "*"
    since = request.headers.get("if-modified-since")
    if since and mtime is not None:
        try:
            return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError):
            return False
    return False
