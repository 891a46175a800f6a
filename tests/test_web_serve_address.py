"""`digest serve` on the address the pages link to: it prints digest.base_url, says in
one line when it listens elsewhere, fails in one line on a busy port, and brings the
pages and feeds in step with a changed base_url before serving them."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import click
import feedparser
import pytest
from click.testing import CliRunner

from digest.program import main
from tests.support.dumps import SAMPLE_FILES
from tests.support.net import free_port
from tests.support.waiting import HANG, wait_for

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dumps").mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, tmp_path / "dumps" / f.name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGEST_CONFIG", raising=False)
    return tmp_path


def configure(project: Path, base_url: str) -> None:
    (project / "digest.toml").write_text(
        f'[digest]\nbase_url = "{base_url}"\n\n[email]\nrecipients = ["ada@example.org"]\n'
    )


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


class Serving:
    """`digest serve` in a process of its own, until its first line is printed."""

    def __init__(self, project: Path, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "serve", *args],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.first = self.proc.stdout.readline()  # blocks until it says where it serves

    def get(self, port: int, path: str) -> bytes:
        def answer() -> bytes | None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG)
                conn.request("GET", path)
                return conn.getresponse().read()
            except ConnectionRefusedError:
                return None

        return wait_for(answer, "the server to answer")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        _, errors = self.proc.communicate(timeout=HANG)
        return errors


def test_serve_prints_the_base_url_and_pages_follow_a_changed_one(project: Path) -> None:
    configure(project, "http://localhost:8000")
    assert "published issue #1" in run("send").output
    port = free_port()
    configure(project, f"http://localhost:{port}")  # the address `serve` will listen on
    server = Serving(project, "--host", "127.0.0.1", "--port", str(port))
    try:
        assert f"at http://localhost:{port}/" in server.first, server.first
        index = server.get(port, "/").decode()
        feed = feedparser.parse(server.get(port, "/feed.xml"))
    finally:
        errors = server.stop()
    assert f'action="http://localhost:{port}/subscribe"' in index
    assert "localhost:8000" not in index
    assert feed.entries[0].link.startswith(f"http://localhost:{port}/")
    assert "warning" not in errors, errors
    configure(project, "https://papers.example.org")  # and `send` with nothing new
    again = run("send")
    assert "nothing to publish" in again.output
    index = (project / "state" / "public" / "index.html").read_text()
    assert "https://papers.example.org/feed.xml" in index and f":{port}" not in index


def test_serve_on_another_port_than_base_url_says_so_in_one_line(project: Path) -> None:
    configure(project, "http://localhost:8000")
    port = free_port()
    server = Serving(project, "--port", str(port))
    server.get(port, "/")  # it answers: everything it says at the start is said
    errors = server.stop()
    assert "at http://localhost:8000/" in server.first, server.first
    lines = [line for line in errors.splitlines() if "warning" in line]
    assert len(lines) == 1, errors
    assert f'base_url = "http://localhost:{port}"' in lines[0]
    assert "--port 8000" in lines[0]


def test_serve_on_a_busy_port_fails_in_one_line(project: Path) -> None:
    configure(project, "http://localhost:8000")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--host", "127.0.0.1", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use (another `digest "
        "serve`, or another program); choose another with --port (or web.port), and set "
        "digest.base_url to match"
    ], result.output
    assert "serving" not in result.output


def test_the_daemon_serving_on_a_busy_port_fails_in_one_line(project: Path) -> None:
    configure(project, "http://localhost:8000")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (project / "digest.toml").write_text(
            (project / "digest.toml").read_text() + f'\n[web]\nhost = "127.0.0.1"\nport = {port}\n'
        )
        done = subprocess.run(
            [sys.executable, "-m", "digest", "run", "--serve"],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"},
            capture_output=True,
            text=True,
            timeout=HANG,
        )
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: cannot listen on 127.0.0.1:{port}: the port is in use (another `digest "
        "serve`, or another program); choose another with --port (or web.port), and set "
        "digest.base_url to match"
    ], done.stderr


def test_answers_on_a_kept_alive_connection_are_sent_at_once(tmp_path: Path) -> None:
    """Every connection `digest serve` accepts has Nagle off (TCP_NODELAY): with it on,
    each answer of a few KB after the first on a keep-alive connection waited for the
    client's delayed ACK, 40 ms (a search page: 22 requests/s)."""
    import threading

    from digest.app import make_app
    from digest.web.server import listen, make_server
    from tests.support.settings import make_settings

    server = make_server(make_app(make_settings(tmp_path, tmp_path)), "127.0.0.1", free_port())
    sock = listen(server)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "the web server to start")
        conn = http.client.HTTPConnection("127.0.0.1", server.config.port, timeout=HANG)
        conn.request("GET", "/nothing-here")
        assert conn.getresponse().read()
        (protocol,) = server.server_state.connections
        accepted = protocol.transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        conn.close()
    finally:
        server.should_exit = True
        thread.join(timeout=HANG)
