"""The index page and the archive search: ``/`` is the published index.html, ``/?q=``
the papers found for the query (state/archive.py, through `App.search_archive`), on
the template set's search page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest.web.files import HTML, PublicFiles
from digest.web.site import Site

MAX_QUERY = 200  # characters of a query that are read


class Search:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.files = PublicFiles(site)

    def index(self, request: Request) -> Response:
        """A plain function: Starlette runs it in its thread pool (the search, the
        page and the file are never waited for on the event loop)."""
        query = request.query_params.get("q", "").strip()[:MAX_QUERY]
        if not query:
            return self.files.response(request, "index.html", HTML)
        hits = self.site.app.search_archive(query)
        return HTMLResponse(self.site.render("search.html.j2", query=query, hits=hits))


def routes(site: Site) -> list[Route]:
    return [Route("/", Search(site).index)]
