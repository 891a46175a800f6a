"""The real web server (uvicorn) on a free port, in a thread of the test process."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

from digest.app import App
from digest.web.server import make_server
from tests.support.net import free_port
from tests.support.waiting import HANG, wait_for


class Served:
    """A running server and a small HTTP client for it."""

    def __init__(self, app: App, port: int) -> None:
        self.app, self.port = app, port

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            body: str | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HANG)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data

    def raw(self, request_line: str) -> bytes:
        """Send a request line as is (no client-side normalisation of the path)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=HANG) as s:
            s.sendall(f"{request_line}\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def serve(app: App, port: int | None = None) -> Iterator[Served]:
    """Run the server for the duration of a fixture (``yield from serve(app)``)."""
    port = port or free_port()
    server = make_server(app, "127.0.0.1", port)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), "the web server to start")
        assert server.started, "the web server stopped before it started"
        yield Served(app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=HANG)
