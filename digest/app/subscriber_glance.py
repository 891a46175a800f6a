"""The subscriber list's commands that must start at once, `digest subscribers list` and
`digest unsubscribe`, through the database's driver alone (state/subscriber_glance.py:
no ORM to import). Each answers None when the state needs the ordinary way (not created
yet, not at the newest schema, another driver, an error): the caller then takes
`subscribing.book`, which shows and changes the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digest.app.wiring import App
    from digest.state.subscriber_glance import Listed, Unsubscribed


def listing(app: App, status: str | None = None) -> list[Listed] | None:
    """Every subscriber (with `status`: only those), in the order they came."""
    from digest.state import subscriber_glance

    return subscriber_glance.listing(app.settings.database_url, status)


def unsubscribe(app: App, token: str) -> Unsubscribed | None:
    """Unsubscribe the owner of ``token`` at once (address None: nobody has it)."""
    from digest.addresses import TOKEN_RE
    from digest.state import subscriber_glance

    if not TOKEN_RE.fullmatch(token or ""):
        return subscriber_glance.Unsubscribed(None)
    return subscriber_glance.unsubscribe(app.settings.database_url, token, app.clock())
