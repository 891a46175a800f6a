"""A web copy worth reading, checked on the rendered pages with lxml: contents, section
anchors and feeds, links inside abstracts (http/https only, escaped), where each paper
can be read, titles that link to the paper, the one-line summary with the abstract folded
under it, and an index that leads to every area's page (and each page to its feed)."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import html as lxml_html

from digest.app import App, make_app, publishing
from digest.render.reading import first_sentence, linkify, read_link
from tests.support.dumps import SAMPLE_FILES, write_dump
from tests.support.settings import make_settings

BASE = "http://localhost:8000"
CRAFTED = [
    (
        "Arxiv Named Paper About Mixture of Experts",
        "We study routers. The preprint is arXiv:2401.01234v2 and code is at "
        "https://github.com/example/moe-router. More at https://example.org/moe?a=1&b=2.",
    ),
    (
        "Project Page Paper on Music Generation",
        "A music model. See https://music.example.net/demo/ for samples and "
        "https://github.com/example/music for code.",
    ),
    (
        "A Paper With No Links At All On Music",
        "Nothing to follow here. Only prose about music and audio generation.",
    ),
    (
        'Hostile <script>alert("t")</script> Title on Music',
        'A hostile abstract. Click javascript:alert(1) or <a href="javascript:alert(2)">this</a> '
        "and <script>alert(3)</script> then http://ok.example/x?q=<b>1</b> & data:text/html,hi.",
    ),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> App:
    tmp = tmp_path_factory.mktemp("webcopy")
    dumps = tmp / "dumps"
    dumps.mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, dumps / f.name)
    write_dump(dumps / "crafted.txt", CRAFTED)
    app = make_app(make_settings(tmp, dumps))
    assert publishing.send(app).issue == 1
    return app


def page(app: App, name: str) -> lxml_html.HtmlElement:
    return lxml_html.fromstring((app.settings.public_dir / name).read_bytes())


def paper_named(root: lxml_html.HtmlElement, start: str) -> lxml_html.HtmlElement:
    for article in root.xpath("//article[@class='paper']"):
        if article.findtext(".//h3/a").startswith(start):
            return article
    raise AssertionError(f"no paper titled {start!r}")


def test_contents_sections_feeds_and_back_links(app: App) -> None:
    root = page(app, "archive/1.html")
    toc = root.get_element_by_id("contents")
    targets = [a.get("href") for a in toc.iter("a")]
    sections = root.xpath("//section[@class='section']")
    assert len(sections) > 3 and targets == [f"#{s.get('id')}" for s in sections]
    public = app.settings.public_dir
    for section in sections:
        feed = section.xpath(".//a[@class='feed-link']")[0].get("href")
        assert feed.startswith(f"{BASE}/themes/") and feed.endswith(".xml")
        assert (public / feed.removeprefix(BASE + "/")).is_file(), feed
        back = section.xpath("./p[@class='back']/a")
        assert [a.get("href") for a in back] == ["#contents"]
        assert back[0].text_content() == "Back to contents"
        assert section.xpath("./article")  # the way back comes after the papers
        assert section.getchildren()[-1].get("class") == "back"


def test_every_paper_has_a_summary_above_its_abstract_and_a_place_to_read_it(app: App) -> None:
    root = page(app, "archive/1.html")
    articles = root.xpath("//article[@class='paper']")
    assert len(articles) == 180
    for article in articles:
        classes = [p.get("class") for p in article.iter("p")]
        assert classes[0] == "summary", article.get("id")
        assert "abstract" in classes or classes == ["summary"]  # one-sentence abstracts: no rest
        read = article.xpath(".//a[contains(@class, 'link-read')]")
        assert len(read) == 1 and read[0].get("href").startswith(("http://", "https://"))
        assert read[0].get("rel") == "nofollow noopener"


def test_where_to_read_prefers_arxiv_then_the_papers_page_then_a_search(app: App) -> None:
    root = page(app, "archive/1.html")

    def read(title: str) -> tuple[str, str]:
        a = paper_named(root, title).xpath(".//a[contains(@class, 'link-read')]")[0]
        return a.get("href"), a.text_content()

    assert read("Arxiv Named Paper") == ("https://arxiv.org/abs/2401.01234", "Read on arXiv")
    assert read("Project Page Paper") == ("https://music.example.net/demo/", "Project page")
    url, label = read("A Paper With No Links")
    parts = urlsplit(url)
    assert (parts.netloc, parts.path, label) == ("arxiv.org", "/search/", "Find on arXiv")
    assert parse_qs(parts.query) == {
        "query": ["A Paper With No Links At All On Music"],
        "searchtype": ["title"],
    }
    # a code link alone is where to read it when there is nothing better
    assert read_link("T", "code https://github.com/a/b", ())[0].startswith("https://arxiv.org/")
    from digest.ingest.links import extract_links

    text = "code https://github.com/a/b"
    assert read_link("T", text, extract_links(text)) == ("https://github.com/a/b", "Code")


def test_urls_in_abstracts_are_links_and_nothing_else_is(app: App) -> None:
    root = page(app, "archive/1.html")
    abstract = paper_named(root, "Arxiv Named Paper").xpath(".//p[@class='abstract']")[0]
    links = abstract.xpath(".//a")
    assert [a.get("href") for a in links] == [
        "https://github.com/example/moe-router",
        "https://example.org/moe?a=1&b=2",
    ]
    assert all(a.get("rel") == "nofollow noopener" for a in links)
    assert abstract.text_content().endswith("https://example.org/moe?a=1&b=2.")  # the dot stays


def test_hostile_text_is_never_markup_and_never_a_script_link(app: App) -> None:
    raw = (app.settings.public_dir / "archive" / "1.html").read_text()
    root = lxml_html.fromstring(raw)
    assert not root.xpath("//script")
    hrefs = [a.get("href") or "" for a in root.iter("a")]
    assert not [h for h in hrefs if not h.startswith(("http://", "https://", "#"))]
    article = paper_named(root, "Hostile")
    assert 'Hostile <script>alert("t")</script> Title' in article.findtext(".//h3/a")
    abstract = article.xpath(".//p[@class='abstract']")[0]
    assert [a.get("href") for a in abstract.iter("a")] == ["http://ok.example/x?q="]
    assert "<script>alert(3)</script>" in abstract.text_content()
    assert "&lt;script&gt;alert(3)" in raw and "<script>alert" not in raw


def test_linkify_escapes_everything_around_the_links() -> None:
    out = str(linkify('a <i>b</i> "http://x.org/a<b" javascript:alert(1) https://y.org/p).'))
    assert out == (
        'a &lt;i&gt;b&lt;/i&gt; &#34;<a href="http://x.org/a" rel="nofollow noopener">'
        "http://x.org/a</a>&lt;b&#34; javascript:alert(1) "
        '<a href="https://y.org/p" rel="nofollow noopener">https://y.org/p</a>).'
    )


def test_first_sentence() -> None:
    assert first_sentence("We do X, e.g. Y. Then Z.") == "We do X, e.g. Y."
    assert first_sentence("  One\nline only ") == "One line only"
    long = "word " * 100
    assert len(first_sentence(long, 60)) <= 60 and first_sentence(long, 60).endswith("…")


def test_index_chips_link_each_section_to_its_page_and_lists_every_area(app: App) -> None:
    root = page(app, "index.html")
    public = app.settings.public_dir
    tags = root.xpath("//ul[@class='tags']//a")
    issue_sections = root.xpath("//li[@class='issue-item']")[0].xpath(".//ul[@class='tags']/li")
    assert len(tags) == len(issue_sections) > 3
    for a in tags:  # an HTML page a person can read, not the raw XML of a feed
        assert a.get("href").startswith(f"{BASE}/sections/") and a.get("href").endswith(".html")
        assert (public / a.get("href").removeprefix(BASE + "/")).is_file()
    areas = root.get_element_by_id("areas").xpath(".//a")
    on_disk = {p.name.removesuffix(".xml") for p in (public / "themes").glob("*.xml")}
    old = {alias for area in app.vocabulary() for alias in area.aliases}
    listed = {a.get("href").rsplit("/", 1)[1].removesuffix(".html") for a in areas}
    assert listed == on_disk - old  # old slugs keep their feed files, not a line of their own
    assert {a.text_content() for a in tags} <= {a.text_content() for a in areas}


def test_a_section_page_lists_its_papers_and_its_feed_links_back_to_it(app: App) -> None:
    from lxml import etree

    issue = page(app, "archive/1.html")
    section = issue.xpath("//section[@class='section']")[0]
    slug = section.get("id").removeprefix("s-")
    name = section.xpath(".//h2/a")[0].text_content()
    titles = [h.text_content() for h in section.xpath(".//h3")]
    url = f"{BASE}/sections/{slug}.html"
    listed = page(app, f"sections/{slug}.html")
    assert listed.findtext(".//h1") == name
    links = listed.xpath("//li[@class='issue-item']//h2/a")
    assert [a.text_content() for a in links] == titles
    assert all(a.get("href").startswith(f"{BASE}/archive/1.html#p-") for a in links)
    feed = listed.xpath("//main//a[@class='feed-link']/@href")
    assert feed == [f"{BASE}/themes/{slug}.xml"]
    assert listed.xpath("//link[@type='application/rss+xml']/@href")[-1] == feed[0]
    # the section feed's channel <link> is that page, not the feed itself
    channel = etree.fromstring((app.settings.public_dir / "themes" / f"{slug}.xml").read_bytes())
    assert channel.findtext("channel/link") == url


def test_abstracts_are_folded_under_the_one_line_summary(app: App) -> None:
    root = page(app, "archive/1.html")
    folded = 0
    for article in root.xpath("//article[@class='paper']"):
        outside = article.xpath(".//p[@class='abstract'][not(ancestor::details)]")
        if article.xpath("./p[@class='summary']"):
            assert not outside, article.get("id")  # only the summary shows at first
            details = article.xpath(".//details[@class='abstract-more']")
            assert len(details) <= 1 and not [d for d in details if d.get("open") is not None]
            if details:
                assert details[0].findtext("summary") == "Abstract"
                assert details[0].xpath("./p[@class='abstract']")
                folded += 1
    assert folded > 150


def test_titles_link_to_the_paper(app: App) -> None:
    root = page(app, "archive/1.html")
    for article in root.xpath("//article[@class='paper']"):
        title = article.xpath(".//h3/a")[0]
        read = article.xpath(".//a[contains(@class, 'link-read')]")[0]
        assert title.get("href") == read.get("href"), article.get("id")
        assert title.get("rel") == "nofollow noopener"
    title = paper_named(root, "Arxiv Named Paper").xpath(".//h3/a")[0]
    assert title.get("href") == "https://arxiv.org/abs/2401.01234"


def test_section_pages_missing_on_disk_are_written_again(app: App) -> None:
    """A site published before section pages existed gets them at its next publish."""
    public = app.settings.public_dir
    feeds = {p.stem for p in (public / "themes").glob("*.xml")}
    shutil.rmtree(public / "sections")
    changed = {p.relative_to(public).as_posix() for p in publishing.publish_files(app)}
    assert {f"sections/{slug}.html" for slug in feeds} <= changed
    assert {p.stem for p in (public / "sections").glob("*.html")} == feeds


def test_the_summary_is_not_said_twice(app: App) -> None:
    root = page(app, "archive/1.html")
    article = paper_named(root, "Yi: Open Foundation Models")
    summary = article.xpath(".//p[@class='summary']")[0].text_content()
    abstract = article.xpath(".//p[@class='abstract']")[0].text_content()
    assert summary.startswith("We introduce the Yi model family")
    assert summary not in abstract and abstract.startswith("The Yi model family is based")
