"""The subscriber pages: /subscribe (double opt-in: GET shows the form, POST sends a
confirmation e-mail), /subscribe/confirm/<token>, one-click unsubscribe (RFC 8058) and
topic preferences.

The pages that only read never take the write lock (the form key is read once, not
written), so a publish, an ingest or an import holding SQLite's write lock delays only
a /subscribe post or a saved preferences form, never a confirmation link or the
preferences page. Handlers that must await the request body hand every database and
template step to `run_in_threadpool`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.app import subscribing
from digest.errors import DeliveryError
from digest.mail.subscribers import SubscriberError
from digest.state.states import SubscriberStatus
from digest.web.feedback import reader_context
from digest.web.origin import client_address, same_site
from digest.web.site import Site


def routes(site: Site) -> list[Route]:
    pages = SubscriberPages(site)
    signup = SignupPages(site)
    return [
        Route("/unsubscribe/{token}", pages.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", pages.preferences, methods=["GET", "POST"]),
        Route("/subscribe", signup.subscribe, methods=["GET", "POST"]),
        Route("/subscribe/confirm/{token}", signup.confirm, methods=["GET", "POST"]),
    ]


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
            outcome = await run_in_threadpool(
                subscribing.request_subscription, app, address, themes, ip
            )
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
            result = await run_in_threadpool(subscribing.confirm_subscription, app, token)
        else:
            result = await run_in_threadpool(subscribing.peek_subscription, app, token)
        if result.state == "unknown":
            return self.site.not_found(request, "This confirmation link is not valid.")
        names = await run_in_threadpool(subscribing.theme_names, app, result.themes)
        status = 410 if result.state == "expired" else 200
        return self._page(
            "confirm.html.j2", status, state=result.state, address=result.address,
            token=token, themes=names,
        )  # fmt: skip

    async def _topics(self) -> dict[str, Any]:
        """The topics a reader may pick: grouped (groups) and flat (areas, for older
        template overrides)."""
        app = self.site.app
        areas = await run_in_threadpool(subscribing.theme_choices, app)
        return {"areas": areas, "groups": await run_in_threadpool(subscribing.topic_groups, app)}

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
        self.book = subscribing.book(site.app)

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
                if "watch" in form or "mute" in form:
                    phrases = (str(form.get("watch", "")), str(form.get("mute", "")))
                    who = self.book.choose_phrases(token, *phrases) or who
                who = self.book.choose_themes(token, [str(v) for v in form.getlist("theme")]) or who
            except SubscriberError as exc:
                return PlainTextResponse(f"Bad request: {exc.message}", status_code=400)
            saved = True
        return self._page(
            "preferences.html.j2",
            address=who.address,
            chosen=subscribing.chosen_topics(self.site.app, who.themes),
            watch=who.watch,
            mute=who.mute,
            themes=self._themes(),
            groups=subscribing.topic_groups(self.site.app),
            token=token,
            csrf=self._csrf(token),
            saved=saved,
            **reader_context(self.site, token, request.query_params.get("done", "")),
        )

    def _page(self, name: str, **context: Any) -> Response:
        headers = {"cache-control": "no-store"}
        return HTMLResponse(self.site.render(name, **context), headers=headers)

    def _themes(self) -> list[tuple[str, str]]:
        return subscribing.theme_choices(self.site.app)

    def _csrf(self, token: str) -> str:
        key = self.site.app.web_secret()
        return hmac.new(key, b"preferences:" + token.encode(), hashlib.sha256).hexdigest()

    def _same_site(self, request: Request) -> bool:
        """See same_site(); clients that send neither header still need the form's HMAC."""
        return same_site(request, self.site.app.settings.base_url)
