"""Concurrent writers on one SQLite state: a publish, one-click
unsubscribes over real HTTP and `subscribers add` all wait their turn; none is lost."""

from __future__ import annotations

import http.client
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from digest.app import make_app, subscribing
from digest.config import load_settings

from .support.dumps import SAMPLE_FILES
from .support.net import free_port

N = 200


def write_config(root: Path, port: int) -> Path:
    dumps = root / "dumps"
    dumps.mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, dumps / f.name)
    config = root / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n'
        f'base_url = "http://127.0.0.1:{port}"\n'
        f'[email]\ntransport = "maildir"\n'
        f'[web]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    return config


def digest_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "digest", "-c", str(config), *args]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    config = write_config(tmp_path, port)
    app = make_app(load_settings(config))  # creates the schema before the server starts
    rows = "".join(f"reader{i}@example.org\n" for i in range(N))
    subscribing.book(app).import_csv(io.StringIO("email\n" + rows))
    app.database.engine.dispose()
    server = subprocess.Popen(
        digest_cmd(config, "serve"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            break
        except OSError:
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
    try:
        yield config, port
    finally:
        server.terminate()
        server.wait(timeout=30)


def tokens(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [t for (t,) in conn.execute("SELECT token FROM subscribers ORDER BY id")]


def wait_for_ingest(db: Path, publish: subprocess.Popen[bytes]) -> None:
    """Until the publish has stored the sample dumps (so what follows overlaps its render,
    store and delivery); a deadline only a hang reaches."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and publish.poll() is None:
        try:
            with sqlite3.connect(db, timeout=60) as conn:
                stored = conn.execute("SELECT count(*) FROM dump_files").fetchone()[0]
            if stored == len(SAMPLE_FILES):
                return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.02)
    raise AssertionError("the publish did not ingest the sample dumps")


def unsubscribe(port: int, token: str) -> list[int]:
    """POST the one-click unsubscribe until it lands; the statuses seen, in order. A
    503 must carry Retry-After; anything else but 200 is a failure."""
    statuses: list[int] = []
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        conn.request(
            "POST",
            f"/unsubscribe/{token}",
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        resp = conn.getresponse()
        resp.read()
        conn.close()
        statuses.append(resp.status)
        if resp.status != 503:
            return statuses
        assert resp.getheader("Retry-After"), "a 503 must say when to retry"
        time.sleep(float(resp.getheader("Retry-After") or 1))
    return statuses


def test_unsubscribes_during_a_publish_all_land(served: tuple[Path, int]) -> None:
    config, port = served
    db = config.parent / "state" / "digest.db"
    all_tokens = tokens(db)
    assert len(all_tokens) == N
    publish = subprocess.Popen(
        digest_cmd(config, "send"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for_ingest(db, publish)  # fire while the publish renders, stores and delivers
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda t: unsubscribe(port, t), all_tokens))
    _, errs = publish.communicate(timeout=600)
    assert publish.returncode == 0, errs.decode()[-3000:]
    assert "Traceback" not in errs.decode()
    assert all(r[-1] == 200 for r in results), sorted({tuple(r) for r in results})
    with sqlite3.connect(db) as conn:
        left = conn.execute(
            "SELECT count(*) FROM subscribers WHERE status != 'unsubscribed'"
        ).fetchone()[0]
        issues = conn.execute("SELECT count(*) FROM digests").fetchone()[0]
    assert left == 0
    assert issues == 1


def test_subscribers_add_during_a_publish(served: tuple[Path, int]) -> None:
    config, _ = served
    db = config.parent / "state" / "digest.db"
    publish = subprocess.Popen(
        digest_cmd(config, "send"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    adds = [
        subprocess.Popen(
            digest_cmd(config, "subscribers", "add", f"late{i}@example.org"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(6)
    ]
    for p in adds:
        _, e = p.communicate(timeout=600)
        assert p.returncode == 0, e.decode()
    _, errs = publish.communicate(timeout=600)
    assert publish.returncode == 0, errs.decode()[-3000:]
    with sqlite3.connect(db) as conn:
        added = conn.execute(
            "SELECT count(*) FROM subscribers WHERE address LIKE 'late%'"
        ).fetchone()[0]
    assert added == 6
    assert os.path.exists(config.parent / "state" / "public" / "feed.xml")


def test_a_lock_held_past_the_busy_timeout_is_one_line_and_a_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where waiting cannot help (another process holds the write lock past the busy
    timeout) the core says so in one line, changes nothing, and the web answers 503 with
    Retry-After; the same request succeeds once the lock is free."""
    from digest.errors import StateBusy
    from digest.state import db as state_db

    from .support.web import serve

    monkeypatch.setattr(state_db, "BUSY_TIMEOUT_S", 1)
    config = write_config(tmp_path, free_port())
    app = make_app(load_settings(config))
    subscribing.book(app).add("ada@example.org")
    token = tokens(tmp_path / "state" / "digest.db")[0]
    holder = sqlite3.connect(tmp_path / "state" / "digest.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateBusy) as caught:
            subscribing.book(app).add("grace@example.org")
        assert "digest.db stayed locked" in str(caught.value)
        assert "\n" not in str(caught.value)
        for served_site in serve(app):
            statuses: list[tuple[int, str | None]] = []
            conn = http.client.HTTPConnection("127.0.0.1", served_site.port, timeout=60)
            conn.request("POST", f"/unsubscribe/{token}", body="List-Unsubscribe=One-Click")
            resp = conn.getresponse()
            resp.read()
            statuses.append((resp.status, resp.getheader("Retry-After")))
            holder.execute("ROLLBACK")
            assert unsubscribe(served_site.port, token) == [200]
            assert statuses == [(503, "5")]
    finally:
        holder.close()
    emails = {s.address: s.status for s in subscribing.book(app).list()}
    assert emails == {"ada@example.org": "unsubscribed"}
