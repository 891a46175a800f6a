"""What every page of the server shares: the pipeline `App` and the pages rendered from
its template set (the 404 page among them)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.app import App


class Site:
    """The App, the public folder and the template set's pages, for every route."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.public = app.settings.public_dir

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
