"""The letters of an issue as subscribers get them (one per selection of sections), and
the stored e-mail copy that `preview` shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.mail.variants import Personaliser
from digest.render.viewmodel import subject_line

if TYPE_CHECKING:
    from digest.app.wiring import App

STORED_EMAIL_BYTES = 500_000  # the stored e-mail copy at most: beyond, fitted like the e-mail

__all__ = ["STORED_EMAIL_BYTES", "personaliser", "stored_copy"]


def personaliser(app: App) -> Personaliser:
    """The letters of an issue, one per selection of sections, as subscribers get them."""
    from digest.mail.message import PLACEHOLDER

    email = app.settings.email
    return Personaliser(
        app.renderer,
        unsubscribe_url=f"{app.settings.base_url}/unsubscribe/{PLACEHOLDER}",
        max_html_bytes=email.max_html_bytes,
        subject=lambda v: subject_line(
            v.site_title,
            v.issue,
            v.paper_count,
            v.sections,
            email.subject,
            email.subject_max,
        ),
    )


def stored_copy(app: App) -> Personaliser:
    """The stored e-mail copy: the whole e-mail (no unsubscribe link) up to
    STORED_EMAIL_BYTES, else fitted under it the way the e-mail is."""
    return Personaliser(
        app.renderer,
        unsubscribe_url="",
        max_html_bytes=STORED_EMAIL_BYTES,
        subject=lambda v: subject_line(v.site_title, v.issue, v.paper_count, v.sections),
    )
