"""What wraps every answer: the security headers (a strict Content-Security-Policy and
friends, error pages included), gzip for the pages made per request (the public files
come compressed already: files.py), and the 503 of a state locked too long."""

from __future__ import annotations

import logging

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
DYNAMIC_GZIP_LEVEL = 6  # a page made per request is compressed per request: not level 9


class SecurityHeaders:
    """Adds the CSP and friends to every response, errors included, and says each
    ``Vary`` name once (GZipMiddleware adds Accept-Encoding to a public file's plain
    answer, which says it already)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = _vary_once([(k, v) for k, v in message.get("headers", [])])
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _vary_once(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = [n.strip() for k, v in headers if k.lower() == b"vary" for n in v.split(b",")]
    if len(names) < 2:
        return headers
    once = b", ".join(dict.fromkeys(n for n in names if n))
    return [(k, v) for k, v in headers if k.lower() != b"vary"] + [(b"vary", once)]


def middleware() -> list[Middleware]:
    """Outermost first. GZipMiddleware leaves alone an answer that has a
    Content-Encoding already (every public file asked for with gzip)."""
    return [
        Middleware(SecurityHeaders),
        Middleware(GZipMiddleware, minimum_size=500, compresslevel=DYNAMIC_GZIP_LEVEL),
    ]


def busy(request: Request, exc: Exception) -> Response:
    """The state stayed locked past the busy timeout: nothing changed; ask to retry."""
    log.warning("answered 503: %s", exc)
    return PlainTextResponse(
        "The service is busy; nothing was changed. Please try again in a few seconds.",
        status_code=503,
        headers={"Retry-After": "5", "cache-control": "no-store"},
    )
