"""The index page and the archive search: ``/`` is the published index.html, ``/?q=``
the papers found for the query (state/archive.py, through `inspecting.search_archive`), on
the template set's search page.

A results page depends only on what is published, and every publish rewrites
index.html: the pages of the last CACHED queries are kept, keyed by the query and the
index's (size, mtime), so a query asked again is answered without the database until
the next issue is out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from digest.app import inspecting
from digest.web.files import HTML, PublicFiles
from digest.web.site import Site

MAX_QUERY = 200  # characters of a query that are read
CACHED = 256  # results pages kept


class Search:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.files = PublicFiles(site)
        self.pages: OrderedDict[tuple[str, tuple[int, int]], str] = OrderedDict()
        self.lock = threading.Lock()

    def index(self, request: Request) -> Response:
        """A plain function: Starlette runs it in its thread pool (the search, the
        page and the file are never waited for on the event loop)."""
        query = request.query_params.get("q", "").strip()[:MAX_QUERY]
        if not query:
            return self.files.response(request, "index.html", HTML)
        return HTMLResponse(self.results(query))

    def results(self, query: str) -> str:
        try:
            st = (self.site.public / "index.html").stat()
        except OSError:  # nothing published yet (or being set up): never cached
            return self.render(query)
        key = (query, (st.st_size, st.st_mtime_ns))
        with self.lock:
            page = self.pages.get(key)
            if page is not None:
                self.pages.move_to_end(key)
                return page
        page = self.render(query)
        with self.lock:
            self.pages[key] = page
            while len(self.pages) > CACHED:
                self.pages.popitem(last=False)
        return page

    def render(self, query: str) -> str:
        hits = inspecting.search_archive(self.site.app, query)
        return self.site.render("search.html.j2", query=query, hits=hits)


def routes(site: Site) -> list[Route]:
    return [Route("/", Search(site).index)]
