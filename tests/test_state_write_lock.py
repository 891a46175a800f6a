"""Parsing dumps and rendering an issue never hold the state's write lock: while digest
parses a big dump or renders an issue, `subscribers add` and one-click unsubscribes (the
other writers) are not kept waiting. Observed, not timed: each time the parser or a
renderer entry point is called, a second SQLite connection tries to take the write lock
without waiting (BEGIN IMMEDIATE, busy timeout 0)."""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from digest.app import make_app, publishing
from digest.ingest import parse
from digest.render.renderer import Renderer
from tests.support.dumps import SAMPLE_FILES
from tests.support.settings import make_settings

WATCHED = {
    parse.parse_bytes.__code__: "parse_bytes",
    Renderer.email_html.__code__: "email_html",
    Renderer.email_text.__code__: "email_text",
    Renderer.web_bytes.__code__: "web_bytes",  # the web copy, rendered to UTF-8
    Renderer.feed_html.__code__: "feed_html",
}


class LockProbe:
    """Notes, at each call of a watched function, whether the write lock was free."""

    def __init__(self, db: Path) -> None:
        self.connection = sqlite3.connect(db, timeout=0, isolation_level=None)
        self.seen: list[tuple[str, bool]] = []

    def free(self) -> bool:
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc), exc
            return False
        self.connection.execute("ROLLBACK")
        return True

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in WATCHED:
            self.seen.append((WATCHED[frame.f_code], self.free()))


def test_no_parse_or_render_happens_while_the_write_lock_is_held(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, dumps / f.name)
    app = make_app(make_settings(tmp_path, dumps))
    app.web_secret()  # the state exists
    probe = LockProbe(tmp_path / "state" / "digest.db")
    sys.setprofile(probe)
    try:
        report = publishing.send(app)
    finally:
        sys.setprofile(None)
        probe.connection.close()
    assert report.issue == 1
    called = {name for name, _ in probe.seen}
    assert {"parse_bytes", "email_html", "web_bytes", "feed_html"} <= called, probe.seen
    assert [name for name, free in probe.seen if not free] == []
