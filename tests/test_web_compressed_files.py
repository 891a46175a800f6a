"""Feeds and pages served compressed at no cost per request: publishing writes a .gz
beside each public file (same mtime), `digest serve` sends it to clients that accept
gzip, decoding to the very bytes of the plain answer, with its own ETag, Vary and 304s;
a stale .gz is never sent."""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.app import App, make_app, publishing
from digest.publish.site import WRITTEN_KEY
from digest.state import store
from tests.support.dumps import SAMPLE_FILES
from tests.support.settings import make_settings
from tests.support.web import Served, serve

GZ = {"Accept-Encoding": "gzip, deflate"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("compressed")
    dumps = tmp / "dumps"
    dumps.mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, dumps / f.name)
    app = make_app(make_settings(tmp, dumps))
    assert publishing.send(app).issue == 1
    yield from serve(app)


def paths(public: Path) -> list[str]:
    slug = sorted((public / "themes").glob("*.xml"))[0].stem
    return [
        "/feed.xml", "/atom.xml", "/feed.json", f"/themes/{slug}.xml",
        f"/sections/{slug}.html", "/", "/archive/1.html",
    ]  # fmt: skip


def public_files(public: Path) -> list[Path]:
    return [p for p in public.rglob("*") if p.is_file() and p.suffix != ".gz"]


def test_publishing_writes_a_gz_beside_each_file_with_its_mtime(site: Served) -> None:
    public = site.app.settings.public_dir
    files = public_files(public)
    assert len(files) > 10
    for path in files:
        copy = path.with_name(path.name + ".gz")
        assert gzip.decompress(copy.read_bytes()) == path.read_bytes(), path
        assert copy.stat().st_mtime_ns == path.stat().st_mtime_ns, path


def test_gzip_answers_decode_to_the_plain_bytes_with_their_own_etag(site: Served) -> None:
    for path in paths(site.app.settings.public_dir):
        status, plain_headers, plain = site.get(path)
        assert status == 200 and "content-encoding" not in plain_headers, path
        status, headers, body = site.get(path, GZ)
        assert status == 200 and headers["content-encoding"] == "gzip", path
        assert gzip.decompress(body) == plain, path
        for h in (headers, plain_headers):
            assert h["vary"] == "Accept-Encoding", path
        assert headers["etag"] != plain_headers["etag"], path
        assert headers["last-modified"] == plain_headers["last-modified"], path
        assert headers["content-type"] == plain_headers["content-type"], path


def test_each_representation_answers_304_to_its_own_validators(site: Served) -> None:
    for path in paths(site.app.settings.public_dir):
        plain_headers = site.get(path)[1]
        gz_headers = site.get(path, GZ)[1]
        for asked, headers in (({}, plain_headers), (GZ, gz_headers)):
            status, again, body = site.get(path, {**asked, "If-None-Match": headers["etag"]})
            assert (status, body) == (304, b""), path
            assert again["etag"] == headers["etag"] and again["vary"] == "Accept-Encoding"
            since = {**asked, "If-Modified-Since": headers["last-modified"]}
            assert site.get(path, since)[0] == 304, path
        # the other representation's tag does not match: the full answer comes
        status, headers, body = site.get(path, {**GZ, "If-None-Match": plain_headers["etag"]})
        assert status == 200 and headers["content-encoding"] == "gzip", path
        status, _, body = site.get(path, {"If-None-Match": gz_headers["etag"]})
        assert status == 200 and body and not body.startswith(b"\x1f\x8b"), path


def test_the_gz_on_disk_is_what_is_sent(site: Served) -> None:
    """Not compressed again per request: a copy made another way (level 1) is sent as
    it is, once it has its file's mtime."""
    feed = site.app.settings.public_dir / "atom.xml"
    copy = feed.with_name("atom.xml.gz")
    other = gzip.compress(feed.read_bytes(), 1, mtime=0)
    assert other != copy.read_bytes()
    copy.write_bytes(other)
    st = feed.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert site.get("/atom.xml", GZ)[2] == other


@pytest.mark.parametrize("shift_ns", [-5_000_000_000, 5_000_000_000])
def test_a_stale_gz_is_never_sent(site: Served, shift_ns: int) -> None:
    """The file rewritten by hand (or by anything but publishing) after its .gz: the
    old copy is not sent, whether its mtime is older or newer; the file is."""
    public = site.app.settings.public_dir
    feed = public / "feed.json"
    new = feed.read_bytes().replace(b"jsonfeed", b"JSONFEED", 1)
    feed.write_bytes(new)
    copy = public / "feed.json.gz"
    st = feed.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + shift_ns))
    status, headers, body = site.get("/feed.json", GZ)
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == new
    assert gzip.decompress(copy.read_bytes()) != new  # the stale copy is still there


def test_files_written_before_the_gz_copies_get_them_at_the_next_publish(
    site: Served,
) -> None:
    app: App = site.app
    public = app.settings.public_dir
    for copy in public.rglob("*.gz"):
        copy.unlink()
    with app.session() as session:  # the files were written by a version without copies
        store.set_meta(session, WRITTEN_KEY, "0" * 64 + " 1")
        session.commit()
    publishing.publish_files(app)
    for path in public_files(public):
        copy = path.with_name(path.name + ".gz")
        assert copy.exists(), path
        assert copy.stat().st_mtime_ns == path.stat().st_mtime_ns, path
