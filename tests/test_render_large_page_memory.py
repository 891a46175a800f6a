"""A large page is rendered to UTF-8 in bounded memory: the web copy of an issue (26 MB
at 10,000 papers) is held once as it grows, never as a list of encoded pieces joined at
the end (which holds it twice for a moment)."""

from __future__ import annotations

import tracemalloc

from digest.render.renderer import Renderer
from tests.test_render import LONG_ABSTRACT, make_paper, make_section, make_view


def test_the_web_copy_is_rendered_into_one_growing_buffer() -> None:
    papers = tuple(make_paper(n, f"Paper {n}: Ωmega routers", LONG_ABSTRACT) for n in range(3000))
    view = make_view((make_section("Mixture of experts", papers),))
    renderer = Renderer()
    renderer.web_bytes(make_view(()))  # the template compiled before measuring

    tracemalloc.start()
    try:
        page = renderer.web_bytes(view)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert page.decode("utf-8") == renderer.web_html(view)
    assert page.count(b'<article class="paper"') == 3000
    assert len(page) > 3_000_000
    # one buffer grown by an eighth at a time, and the pieces of the moment: 1.44x here;
    # a list of pieces joined at the end peaked at 2.03x
    assert peak < 1.6 * len(page), (peak, len(page))
