"""A reader's own links: "more / less like this" (/feedback/<token>/<paper>/<more|less>),
and on the preferences page their marks (forget them) and their private feed (a new
link). The feed itself is web/private_feed.py.

GET only asks (mail scanners and previews open links): one button posts the form, which
is refused from another site (Sec-Fetch-Site / Origin) and without the form's own HMAC
of the token and the link, as the preferences form is. A bad or foreign token, an unknown
paper or a mark other than more/less is a plain 404 (no hint which). Marking twice is
harmless; past ``subscribe.max_feedback_per_hour`` marks an hour a mark is 429. Tokens
are never logged (the server logs no paths; ReaderDesk logs row ids).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from digest.app import readers
from digest.app.readers import ReaderDesk
from digest.urls import FEEDBACK, feedback_key, feedback_url
from digest.web.origin import same_site
from digest.web.private_feed import PrivateFeedRoute

if TYPE_CHECKING:
    from digest.web.site import Site

__all__ = ["ReaderPages", "reader_context", "reader_routes"]

NO_STORE = {"cache-control": "no-store"}


def reader_routes(site: Site) -> list[Route]:
    """The routes of readers' own links (register them with the subscriber pages)."""
    desk = readers.desk(site.app)
    pages = ReaderPages(site, desk)
    feed = PrivateFeedRoute(site, desk)
    return [
        Route("/feedback/{token}/{paper}/{mark}", pages.feedback, methods=["GET", "POST"]),
        Route("/preferences/{token}/feed", pages.renew_feed, methods=["POST"]),
        Route("/preferences/{token}/forget", pages.forget, methods=["POST"]),
        Route("/feeds/{token}.xml", feed.serve),
    ]


def form_key(site: Site, purpose: str, *parts: str) -> str:
    """The HMAC a form of ours carries (the installation's web secret, this purpose and
    these parts): a page elsewhere cannot make one."""
    message = "\n".join((purpose, *parts)).encode()
    return hmac.new(site.app.web_secret(), message, hashlib.sha256).hexdigest()


def reader_context(site: Site, token: str, done: str = "") -> dict[str, Any]:
    """What the preferences page shows of the reader's own data (_reader_data.html.j2)."""
    base = site.app.settings.base_url
    return {
        "reader": readers.desk(site.app).data(token),
        "reader_action": f"{base}/preferences/{token}",
        "reader_csrf": form_key(site, "reader", token),
        "reader_done": done if done in ("feed", "forget") else "",
    }


class ReaderPages:
    def __init__(self, site: Site, desk: ReaderDesk) -> None:
        self.site, self.desk = site, desk

    async def feedback(self, request: Request) -> Response:
        form = await request.form() if request.method == "POST" else None
        return await run_in_threadpool(self._feedback, request, form)

    def _feedback(self, request: Request, form: FormData | None) -> Response:
        token, mark = request.path_params["token"], request.path_params["mark"]
        key = feedback_key(request.path_params["paper"])
        target = self.desk.target(token, key) if mark in FEEDBACK else None
        if target is None:
            return self.site.not_found(request)
        csrf = form_key(self.site, "feedback", token, key, mark)
        state, status = "confirm", 200
        if form is not None:
            if not self._allowed(request, form, csrf):
                return PlainTextResponse("Forbidden: cross-site form post", status_code=403)
            outcome = self.desk.mark(token, key, 1 if mark == "more" else -1)
            if outcome == "unknown":
                return self.site.not_found(request)
            state, status = ("done", 200) if outcome == "done" else ("busy", 429)
        base = self.site.app.settings.base_url
        html = self.site.render(
            "feedback.html.j2", state=state, mark=mark, title=target.title, csrf=csrf,
            action=feedback_url(base, token, key, mark),
            preferences_url=f"{base}/preferences/{token}",
        )  # fmt: skip
        return HTMLResponse(html, status_code=status, headers=NO_STORE)

    async def renew_feed(self, request: Request) -> Response:
        return await self._reader_post(request, "feed")

    async def forget(self, request: Request) -> Response:
        return await self._reader_post(request, "forget")

    async def _reader_post(self, request: Request, action: str) -> Response:
        form = await request.form()
        return await run_in_threadpool(self._reader_action, request, form, action)

    def _reader_action(self, request: Request, form: FormData, action: str) -> Response:
        token = request.path_params["token"]
        if self.desk.data(token) is None:
            return self.site.not_found(request, "This preferences link is not valid.")
        if not self._allowed(request, form, form_key(self.site, "reader", token)):
            return PlainTextResponse("Forbidden: cross-site form post", status_code=403)
        done = self.desk.renew_feed(token) if action == "feed" else self.desk.forget(token)
        if done is None or done is False:
            return self.site.not_found(request, "This preferences link is not valid.")
        base = self.site.app.settings.base_url
        # back to the page (POST-redirect-GET), saying what was done
        return RedirectResponse(f"{base}/preferences/{token}?done={action}", status_code=303)

    def _allowed(self, request: Request, form: FormData, csrf: str) -> bool:
        return same_site(request, self.site.app.settings.base_url) and hmac.compare_digest(
            str(form.get("csrf", "")), csrf
        )
