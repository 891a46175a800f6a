"""The e-mail of a reader with a "For you" block, in headless Chromium at 375 and 1280 px,
light and dark: nothing wider than the screen, the notes (found by their text: premailer
keeps only the classes its <style> uses) legible on their background (WCAG AA, 4.5:1).
Screenshots are saved under test-artifacts/ for a person to look at."""

from __future__ import annotations

import pytest

from tests.support.readers import parts, publish
from tests.test_web_in_browser import (  # noqa: F401 (browser: the fixture)
    SCHEMES,
    browser,
    contrast,
    layout_problems,
    open_page,
    shot,
)

NOTES = """() => [...document.querySelectorAll('p')]
  .filter(p => /^(matched|like): /.test(p.textContent.trim())).map(p => {
    let e = p, bg = 'rgba(0, 0, 0, 0)';
    while (e && (bg = getComputedStyle(e).backgroundColor) === 'rgba(0, 0, 0, 0)')
        e = e.parentElement;
    return [p.textContent.trim(), getComputedStyle(p).color, bg];
})"""


@pytest.fixture(scope="module")
def for_you_email(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("for-you")
    got = publish(
        tmp,
        f"sqlite:///{tmp / 'state' / 'digest.db'}",
        {"ada@example.org": {"watch": "diffusion; audio"}},
    )
    html, _ = parts(got["ada@example.org"])
    assert ">For you</h2>" in html
    return html


@pytest.mark.parametrize("width", (375, 1280))
@pytest.mark.parametrize("scheme", SCHEMES)
def test_for_you_block_looks_right(browser, for_you_email: str, width: int, scheme: str) -> None:  # noqa: F811
    page = open_page(browser, viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.set_content(for_you_email)
    assert layout_problems(page, width) == [], f"{scheme} at {width}px"
    notes = page.evaluate(NOTES)
    assert sorted(n[0] for n in notes) == ["matched: audio", *["matched: diffusion"] * 2]
    for text, fg, bg in notes:
        assert contrast(fg, bg) >= 4.5, f"{scheme}: {text!r} {fg} on {bg}"
    shot(page, f"email-for-you-{width}-{scheme}.png", 2400)
    page.close()
