"""Rendering: real Jinja2 + premailer output, checked as parsed HTML and as text."""

from __future__ import annotations

import mailbox
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from lxml import html as lxml_html

from digest.app import make_app, publishing
from digest.errors import TemplateError
from digest.ingest.links import Link
from digest.render.renderer import Renderer
from digest.render.templates import available_template_sets, builtin_templates_dir
from digest.render.viewmodel import DigestView, IssueSummary, PaperView, SectionView
from digest.text import truncate
from digest.urls import abstract_url, slugify
from tests.support.settings import make_settings

BASE = "https://digest.example.org"
WEB = BASE + "/archive/7.html"
LONG_ABSTRACT = (
    "Mixture-of-experts models route each token to a few experts. "
    + "We study how routers behave when the number of experts grows, and why load balancing "
    "losses help less than expected at scale. "
    * 6
    + "Our code is at https://github.com/example/moe-router and the END OF THE ABSTRACT."
)
EVIL = '<script>alert(1)</script> & "x"'

# ----------------------------------------------------------------------------- builders


def make_paper(n: int, title: str, abstract: str, links: tuple[Link, ...] = ()) -> PaperView:
    short, truncated = truncate(abstract, 320)
    return PaperView(
        key=title.lower(),
        anchor=f"p-{n}",
        title=title,
        abstract=abstract,
        short_abstract=short,
        truncated=truncated,
        links=links,
        web_url=f"{WEB}#p-{n}",
    )


def make_section(name: str, papers: tuple[PaperView, ...]) -> SectionView:
    return SectionView(name=name, slug=slugify(name), anchor="s-" + slugify(name), papers=papers)


def make_view(sections: tuple[SectionView, ...], issue: int = 7) -> DigestView:
    return DigestView(
        site_title="Papers digest",
        issue=issue,
        subject=f"Papers digest #{issue}",
        published_at=datetime(2025, 3, 14, 8, 0, tzinfo=UTC),
        sections=sections,
        paper_count=sum(len(s.papers) for s in sections),
        base_url=BASE,
        web_url=WEB,
        feed_url=BASE + "/feed.xml",
        archive_url=BASE + "/archive/",
    )


def sample_view() -> DigestView:
    code = Link("https://github.com/example/moe-router", "code")
    page = Link("https://example.org/projects/sparse-moe/", "project")
    moe = make_section(
        "Mixture of experts",
        (
            make_paper(
                1, "Routers that scale: sparse MoE at 1T parameters", LONG_ABSTRACT, (code,)
            ),
            make_paper(
                2, "Experts & specialists in vision transformers", "A short abstract.", (page,)
            ),
            make_paper(3, "Soft MoE without tears", "Soft routing, no token drops.", (code, page)),
        ),
    )
    reasoning = make_section(
        "Reasoning & planning",
        (
            make_paper(4, "Chain-of-thought <considered> harmful?", "We ask whether CoT helps."),
            make_paper(5, "Tree search for LLM agents", "Search beats sampling.", (page,)),
        ),
    )
    other = make_section("Other", (make_paper(6, "A paper with a title only", ""),))
    return make_view((moe, reasoning, other))


def all_papers(view: DigestView) -> list[PaperView]:
    return [paper for section in view.sections for paper in section.papers]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def view() -> DigestView:
    return sample_view()


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="module")
def email(renderer: Renderer, view: DigestView) -> str:
    return renderer.email_html(view)


@pytest.fixture(scope="module")
def email_doc(email: str) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(email)


@pytest.fixture(scope="module")
def text(renderer: Renderer, view: DigestView) -> str:
    return renderer.email_text(view)


@pytest.fixture(scope="module")
def web(renderer: Renderer, view: DigestView) -> str:
    return renderer.web_html(view)


@pytest.fixture(scope="module")
def evil_outputs(renderer: Renderer) -> dict[str, str]:
    evil_link = Link("javascript:alert(2)", "code")
    section = make_section(EVIL, (make_paper(1, EVIL, EVIL, (evil_link,)),))
    view = make_view((section, make_section("Other", (make_paper(2, "Fine", "Ok."),))))
    summary = IssueSummary(1, EVIL, view.published_at, 1, (EVIL,), WEB)
    return {
        "email": renderer.email_html(view),
        "web": renderer.web_html(view),
        "index": renderer.index_html(EVIL, BASE, view.feed_url, [summary]),
        "text": renderer.email_text(view),
    }


def strip_media_rules(css: str) -> str:
    """The style text without its @media blocks (one level of nesting)."""
    return re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)


# ----------------------------------------------------------------------------- e-mail HTML


def test_email_is_a_full_document(email: str, email_doc: lxml_html.HtmlElement) -> None:
    assert email.startswith("<!DOCTYPE html>")
    assert email_doc.find("head") is not None
    assert email_doc.find("body") is not None
    assert email_doc.findtext(".//title") == "Papers digest #7"
    schemes = email_doc.xpath('//meta[@name="color-scheme"]/@content')
    assert schemes == ["light dark"]


def test_email_css_is_inlined(email_doc: lxml_html.HtmlElement) -> None:
    title_link = email_doc.xpath(f'//h3/a[starts-with(@href, "{WEB}")]')[0]
    assert "font-weight" in email_doc.xpath("//h3")[0].get("style")
    assert "color:" in title_link.get("style")
    container = email_doc.xpath('//table[contains(@class, "container")][@bgcolor]')
    assert container, "the card keeps a bgcolor attribute as a fallback"
    assert "max-width:600px" in container[0].get("style").replace(" ", "")  # fluid, 600 at most
    assert "width:600px" in container[0].get("style").replace(" ", "")
    assert all(t.get("role") == "presentation" for t in email_doc.iter("table"))


def test_email_style_block_holds_only_what_cannot_be_inlined(
    email_doc: lxml_html.HtmlElement,
) -> None:
    styles = email_doc.xpath("//style")
    assert len(styles) == 1 and styles[0].getparent().tag == "head"
    css = styles[0].text
    assert "@media (prefers-color-scheme: dark)" in css
    assert "max-width: 620px" in css
    leftover = strip_media_rules(css)
    selectors = re.findall(r"([^{}]+)\{", leftover)
    assert all(":" in s for s in selectors), selectors  # only :hover and the like


def test_email_keeps_only_classes_the_style_block_uses(
    email_doc: lxml_html.HtmlElement,
) -> None:
    css = email_doc.xpath("//style")[0].text
    used = set(re.findall(r"\.([\w-]+)", css))
    classes = {c for value in email_doc.xpath("//@class") for c in value.split()}
    assert classes, "dark-mode rules need some classes"
    assert classes <= used


def test_email_toc_links_point_at_existing_ids(
    email_doc: lxml_html.HtmlElement, view: DigestView
) -> None:
    ids = set(email_doc.xpath("//@id"))
    internal = email_doc.xpath('//a[starts-with(@href, "#")]/@href')
    assert [h[1:] for h in internal] == [s.anchor for s in view.sections]
    assert all(h[1:] in ids for h in internal)
    toc_text = " ".join(email_doc.xpath('//a[starts-with(@href, "#")]/../..')[0].itertext())
    assert "Mixture of experts" in toc_text and "3" in toc_text


def test_email_shows_every_paper_and_link(
    email_doc: lxml_html.HtmlElement, view: DigestView
) -> None:
    hrefs = email_doc.xpath("//a/@href")
    titles = [" ".join(h.text_content().split()) for h in email_doc.xpath("//h3")]
    assert titles == [p.title for p in all_papers(view)]
    for paper in all_papers(view):
        assert paper.web_url in hrefs
        for link in paper.links:
            assert link.url in hrefs
    labels = {a.text_content() for a in email_doc.xpath("//a")}
    assert {"Code", "Project page"} <= labels


def test_email_titles_link_to_the_paper_and_the_contents_are_one_line(renderer: Renderer) -> None:
    def on_arxiv(p: PaperView) -> PaperView:
        return replace(p, read_url=f"https://arxiv.org/abs/2401.{p.anchor[2:]:0>5}")

    view = sample_view()
    view = replace(
        view,
        sections=tuple(replace(s, papers=tuple(map(on_arxiv, s.papers))) for s in view.sections),
    )
    doc = lxml_html.document_fromstring(renderer.email_html(view))
    assert doc.xpath("//h3/a/@href") == [p.read_url for p in all_papers(view)]
    # the full abstract is still one link away, on the web copy
    more = doc.xpath('//a[contains(., "Read the full abstract")]/@href')
    assert more == [abstract_url(p.web_url) for p in all_papers(view) if p.truncated]
    # the contents are one paragraph of links, not a row per section before any paper
    contents = doc.xpath('//a[starts-with(@href, "#")]')
    assert len(contents) == len(view.sections) and len({a.getparent() for a in contents}) == 1
    assert contents[0].getparent().tag == "p"


def test_the_text_part_lists_every_title_when_the_html_is_cut(
    tmp_path: Path, dumps_dir: Path
) -> None:
    app = make_app(make_settings(tmp_path, dumps_dir))
    publishing.send(app)
    box = mailbox.Maildir(app.settings.outbox_dir, create=False)
    msg = message_from_bytes(next(iter(box)).as_bytes(), policy=policy.default)
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    web = lxml_html.fromstring((app.settings.public_dir / "archive" / "1.html").read_bytes())
    titles = [" ".join(h.text_content().split()) for h in web.xpath("//article//h3")]
    assert len(titles) == 176
    assert len(lxml_html.document_fromstring(html).xpath("//h3")) < len(titles)  # cut for Gmail
    flat = " ".join(text.split())
    assert [t for t in titles if t not in flat] == []
    assert "This e-mail lists" not in text  # nothing is left out of the text part


def test_email_links_the_full_abstract_only_when_truncated(
    email: str, email_doc: lxml_html.HtmlElement, view: DigestView
) -> None:
    more = email_doc.xpath('//a[contains(., "Read the full abstract")]/@href')
    truncated = [abstract_url(p.web_url) for p in all_papers(view) if p.truncated]
    assert more == truncated and len(truncated) == 1
    assert "END OF THE ABSTRACT" not in email


def test_email_footer(email_doc: lxml_html.HtmlElement, view: DigestView) -> None:
    links = {a.text_content().strip(): a.get("href") for a in email_doc.xpath("//a")}
    assert links["View this issue on the web"] == view.web_url
    assert links["RSS feed"] == view.feed_url
    assert "Unsubscribe" not in links


def test_email_unsubscribe_link_when_given(renderer: Renderer) -> None:
    view = make_view((make_section("Other", (make_paper(1, "One", "Abstract."),)),))
    doc = lxml_html.document_fromstring(
        renderer.email_html(view, unsubscribe_url="https://digest.example.org/u/tok")
    )
    assert doc.xpath('//a[.="Unsubscribe"]/@href') == ["https://digest.example.org/u/tok"]
    assert not doc.xpath('//a[starts-with(@href, "#")]'), "one section: no table of contents"


def test_email_preheader_is_hidden(email_doc: lxml_html.HtmlElement) -> None:
    first = email_doc.find("body")[0]
    assert "display:none" in first.get("style").replace(" ", "")
    assert first.text_content().startswith("6 new papers in 3 topics")


def test_empty_preview_renders(renderer: Renderer) -> None:
    view = make_view((), issue=0)
    doc = lxml_html.document_fromstring(renderer.email_html(view))
    assert doc.xpath('//h1[.="Preview"]')
    assert "No new papers in this issue." in doc.text_content()
    text = renderer.email_text(view)
    assert text.startswith("Papers digest\nPreview - 14 March 2025")
    assert "No new papers in this issue." in renderer.web_html(view)


class _Recorder(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b".paper-link { color: #ff0000 }")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def css_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_premailer_fetches_nothing(tmp_path: Path, css_server: str) -> None:
    (tmp_path / "digest.html.j2").write_text(
        '{% extends "default:digest.html.j2" %}{% block head_extra %}'
        f'<link rel="stylesheet" href="{css_server}/remote.css">{{% endblock %}}'
    )
    _Recorder.hits.clear()
    view = make_view((make_section("Other", (make_paper(1, "One", "Abstract."),)),))
    out = Renderer(templates_dir=tmp_path).email_html(view)
    assert _Recorder.hits == []
    assert "#ff0000" not in out


# ----------------------------------------------------------------------------- text part


def test_text_has_no_markup(text: str) -> None:
    assert not re.search(r"</?[a-zA-Z][^>]*>", text.replace("<considered>", ""))
    assert not re.search(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", text)
    assert "Reasoning & planning" in text
    assert "Experts & specialists in vision transformers" in text
    assert "Chain-of-thought <considered> harmful?" in text


def test_text_lines_fit_78_columns_except_urls(text: str) -> None:
    long_lines = [line for line in text.splitlines() if len(line) > 78]
    assert all("://" in line for line in long_lines), long_lines


def test_text_has_contents_papers_links_and_web_copy(text: str, view: DigestView) -> None:
    assert text.startswith("Papers digest\nIssue 7 - 14 March 2025")
    assert "IN THIS ISSUE" in text
    for section in view.sections:
        assert f"* {section.name} ({len(section.papers)})" in text
    flat = " ".join(text.split())
    for paper in all_papers(view):
        assert paper.title in flat
        assert " ".join(paper.short_abstract.split()) in flat
        for link in paper.links:
            assert link.url in text.split()
    assert f"View this issue on the web: {view.web_url}" in text
    assert "END OF THE ABSTRACT" not in text


# ----------------------------------------------------------------------------- web copy


def test_web_copy_has_full_abstracts_and_anchors(web: str, view: DigestView) -> None:
    doc = lxml_html.document_fromstring(web)
    assert "END OF THE ABSTRACT" in web
    for section in view.sections:
        assert doc.xpath(f'//section[@id="{section.anchor}"]')
    for paper in all_papers(view):
        article = doc.xpath(f'//article[@id="{paper.anchor}"]')[0]
        body = " ".join(article.text_content().split())
        assert paper.title in body and " ".join(paper.abstract.split()) in body


def test_web_copy_autodiscovery_and_inline_css(web: str, view: DigestView) -> None:
    doc = lxml_html.document_fromstring(web)
    alternates = {
        link.get("type"): link.get("href") for link in doc.xpath('//link[@rel="alternate"]')
    }
    assert alternates == {
        "application/rss+xml": view.feed_url,
        "application/atom+xml": BASE + "/atom.xml",
    }
    assert not doc.xpath('//link[@rel="stylesheet"]')
    css = doc.xpath("//head/style")[0].text
    assert "max-width" in css and "prefers-color-scheme: dark" in css
    assert doc.xpath('//meta[@name="viewport"]')


def test_index_lists_issues_in_given_order(renderer: Renderer) -> None:
    when = datetime(2025, 3, 14, tzinfo=UTC)
    issues = [
        IssueSummary(
            n, f"Issue number {n}", when, 10 + n, ("Reasoning",), f"{BASE}/archive/{n}.html"
        )
        for n in (3, 2, 1)
    ]
    out = renderer.index_html("Papers digest", BASE, BASE + "/feed.xml", issues)
    doc = lxml_html.document_fromstring(out)
    assert doc.xpath("//h2/a/@href") == [i.web_url for i in issues]
    assert doc.xpath('//link[@type="application/atom+xml"]/@href') == [BASE + "/atom.xml"]
    assert "13 papers" in out


# ----------------------------------------------------------------------------- escaping


@pytest.mark.parametrize("kind", ["email", "web", "index"])
def test_untrusted_text_is_escaped_in_html(evil_outputs: dict[str, str], kind: str) -> None:
    out = evil_outputs[kind]
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "javascript:" not in out


def test_untrusted_text_is_verbatim_in_the_text_part(evil_outputs: dict[str, str]) -> None:
    assert EVIL in evil_outputs["text"]
    assert "&lt;" not in evil_outputs["text"]


# ----------------------------------------------------------------------------- themes


def test_user_template_extends_the_default_one(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        '{% extends "default:digest.txt.j2" %}'
        "{% block footer_extra %}Sent with care & {{ view.issue }}.\n{% endblock %}"
    )
    view = make_view((make_section("Other", (make_paper(1, "One", "Abstract."),)),))
    text = Renderer(templates_dir=str(tmp_path)).email_text(view)
    assert text.rstrip().endswith("Sent with care & 7.")
    assert "View this issue on the web" in text


def test_user_stylesheet_replaces_the_default_one(tmp_path: Path) -> None:
    (tmp_path / "style.css").write_text(".paper-link { color: #123456; }")
    view = make_view((make_section("Other", (make_paper(1, "One", "Abstract."),)),))
    doc = lxml_html.document_fromstring(Renderer(templates_dir=tmp_path).email_html(view))
    style = doc.xpath('//a[.="One"]')[0].get("style")
    assert style.replace(" ", "") == "color:#123456"
    assert not doc.xpath("//style"), "nothing left that needs a <style> block"


def test_theme_falls_back_to_default_and_has_its_prefix(tmp_path: Path) -> None:
    shutil.copytree(builtin_templates_dir() / "default", tmp_path / "default")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "digest.txt.j2").write_text(
        '{% extends "default:digest.txt.j2" %}{% block header %}PLAIN\n{% endblock %}'
    )
    view = make_view((make_section("Other", (make_paper(1, "One", "Abstract."),)),))
    renderer = Renderer("plain", builtin_dir=tmp_path)
    assert renderer.search_path == (tmp_path / "plain", tmp_path / "default")
    assert renderer.email_text(view).startswith("PLAIN\n")
    assert "&lt;" in renderer.web_html(make_view((make_section("<b>", ()),)))


def test_unknown_theme_lists_the_search_path(tmp_path: Path) -> None:
    with pytest.raises(TemplateError) as err:
        Renderer("no-such-theme", templates_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message
    assert str(builtin_templates_dir() / "no-such-theme") in message
    assert "available template sets: compact, default" in message


def test_missing_template_lists_the_search_path(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    renderer = Renderer(builtin_dir=tmp_path)
    with pytest.raises(TemplateError, match=r"'digest\.txt\.j2' not found; searched: .*default"):
        renderer.email_text(sample_view())


def test_missing_templates_dir_and_bad_template_are_template_errors(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a folder"):
        Renderer(templates_dir=tmp_path / "missing")
    (tmp_path / "digest.txt.j2").write_text("{% if %}")
    with pytest.raises(TemplateError, match=r"digest\.txt\.j2:1"):
        Renderer(templates_dir=tmp_path).email_text(sample_view())
    (tmp_path / "digest.txt.j2").write_text("{{ no_such_variable }}")
    with pytest.raises(TemplateError, match="no_such_variable"):
        Renderer(templates_dir=tmp_path).email_text(sample_view())


def test_user_html_templates_autoescape_too(tmp_path: Path) -> None:
    (tmp_path / "archive.html.j2").write_text("<h1>{{ view.subject }}</h1>")
    (tmp_path / "digest.txt.j2").write_text("{{ view.subject }}")
    view = make_view((make_section("Other", ()),))
    view = DigestView(**{**view.__dict__, "subject": "<b>A & B</b>"})
    renderer = Renderer(templates_dir=tmp_path)
    assert renderer.web_html(view) == "<h1>&lt;b&gt;A &amp; B&lt;/b&gt;</h1>"
    assert renderer.email_text(view) == "<b>A & B</b>"


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Mixture of experts", "mixture-of-experts"),
        ("Reasoning & planning", "reasoning-planning"),
        ("Café crème: Vision-Language!", "cafe-creme-vision-language"),
        ("GPT-4o  ", "gpt-4o"),
        ("日本語", "section"),
        ("", "section"),
        ("---", "section"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


# ----------------------------------------------------------------------------- compact theme


@pytest.fixture(scope="module")
def compact() -> Renderer:
    return Renderer("compact")


def test_compact_theme_is_a_complete_look(compact: Renderer, view: DigestView) -> None:
    assert compact.search_path == (
        builtin_templates_dir() / "compact",
        builtin_templates_dir() / "default",
    )
    assert "compact" in available_template_sets(builtin_templates_dir())
    email = compact.email_html(view)
    doc = lxml_html.document_fromstring(email)
    flat = " ".join(doc.text_content().split())
    for paper in all_papers(view):
        assert paper.title in flat
    title_style = doc.xpath("//h3")[0].get("style").replace(" ", "")
    assert "Georgia" in title_style and "#0f766e" in email
    assert "#4353c6" not in email  # none of the default look's accent is left
    web = compact.web_html(view)
    assert "--accent: #0f766e" in web and "END OF THE ABSTRACT" in web
    assert compact.email_text(view) == Renderer().email_text(view)  # same text part


@pytest.mark.parametrize("theme", ["default", "compact"])
def test_email_stays_readable_in_dark_mode(theme: str, view: DigestView) -> None:
    """Every element with a colour of its own is recoloured for dark clients, and the
    dark rules survive inlining in the <style> block."""
    doc = lxml_html.document_fromstring(Renderer(theme).email_html(view))
    css = doc.xpath("//style")[0].text
    dark = css[css.index("prefers-color-scheme: dark") :]
    for cls in ("body", "wrapper", "container", "issue", "paper-link", "abstract", "link"):
        assert f".{cls}" in dark, cls
    assert doc.xpath('//meta[@name="color-scheme"]/@content') == ["light dark"]


def test_user_folder_overrides_the_compact_theme(tmp_path: Path, view: DigestView) -> None:
    (tmp_path / "style.css").write_text(".paper-link { color: #123456; }")
    renderer = Renderer("compact", templates_dir=tmp_path)
    assert renderer.search_path[0] == tmp_path
    doc = lxml_html.document_fromstring(renderer.email_html(view))
    assert "#123456" in doc.xpath("//h3/a")[0].get("style")
    assert "#0f766e" in renderer.web_html(view)  # web.css still the theme's
