"""Several `digest worker` processes on one PostgreSQL, sending through a real Postfix
(Debian's, started by .ci/postfix.sh) into its Maildir: one worker is SIGKILLed in the
middle, the others take its rows back, and every subscriber ends with one copy."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select

from digest.app import make_app
from digest.config import load_settings
from digest.state.models import Delivery, Subscriber

from .conftest import ROOT, new_pg_database
from .test_pipeline import write_dump

POSTFIX = os.environ.get("DIGEST_TEST_POSTFIX", "")  # "host:port maildir", from .ci/postfix.sh
DELIVERED_TO = re.compile(rb"^Delivered-To: (\S+)", re.M | re.I)


def postfix() -> tuple[str, int, Path]:
    if not POSTFIX:
        pytest.fail("DIGEST_TEST_POSTFIX is not set: run the tests through .ci/run (make test)")
    where, maildir = POSTFIX.split()
    host, port = where.rsplit(":", 1)
    return host, int(port), Path(maildir)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def copies(maildir: Path, domain: str) -> Counter[str]:
    """Messages in the Maildir per recipient of `domain` (Postfix adds Delivered-To)."""
    found: Counter[str] = Counter()
    suffix = f"@{domain}".encode()
    for folder in ("new", "cur"):
        for path in (maildir / folder).glob("*") if (maildir / folder).is_dir() else ():
            with open(path, "rb") as f:
                head = f.read(4096)
            match = DELIVERED_TO.search(head)
            if match and match.group(1).lower().endswith(suffix):
                found[match.group(1).decode().lower()] += 1
    return found


def queued_for(domain: str) -> bool:
    """Whether Postfix still holds a message for `domain` in its queue."""
    config = Path(postfix()[2]).parents[1] / "etc"
    listing = subprocess.run(
        ["postqueue", "-c", str(config), "-j"], capture_output=True, text=True, check=False
    ).stdout
    return f"@{domain}" in listing


def project(folder: Path, url: str, port: int, host: str) -> Path:
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    write_dump(folder / "dumps" / "0.txt", [(f"Paper {i}", "An abstract. " * 8) for i in range(5)])
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\ndatabase_url = "{url}"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "{host}"\nsmtp_port = {port}\n'
        "smtp_timeout = 30.0\nconnections = 2\nclaim_batch = 20\nlease_seconds = 4.0\n"
        "[schedule]\npoll_seconds = 0.2\n"
    )
    return config


def seed(url: str, domain: str, n: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC)
    rows = [
        {
            "key": f"r{i}@{domain}",
            "address": f"r{i}@{domain}",
            "name": "",
            "status": "active",
            "themes": [],
            "token": secrets.token_urlsafe(32),
            "bounce_count": 0,
            "created_at": now,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Subscriber), rows)
    engine.dispose()


def start_worker(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config), "worker", "--drain"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_three_workers_one_killed_every_subscriber_gets_one_copy(tmp_path: Path) -> None:
    host, port, maildir = postfix()
    readers, connections = 3000, 2
    domain = f"w{uuid.uuid4().hex[:10]}.test"
    with new_pg_database() as url:
        config = project(tmp_path, url, port, host)
        app = make_app(load_settings(str(config)))
        app.engine  # noqa: B018  (creates the schema)
        seed(url, domain, readers)
        report = app.send(deliver=False)  # publish: 3,000 pending rows
        assert report.issue == 1

        def sent() -> int:
            with app.session() as s:
                return int(s.scalar(select(func.count()).where(Delivery.status == "sent")) or 0)

        procs = [start_worker(config) for _ in range(3)]
        wait_for(lambda: sent() >= readers // 5, 120, "a fifth of the messages")
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        assert sent() < readers, "the run ended before the kill: nothing was tested"
        for p in procs[1:]:
            out, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()
            assert re.search(rb"worker: \d+ sent, 0 failed", out), out
        with app.session() as s:
            statuses = Counter(s.scalars(select(Delivery.status)))
        assert statuses == Counter({"sent": readers})
        app.engine.dispose()

    wait_for(lambda: not queued_for(domain), 120, "Postfix to deliver its queue")
    got = copies(maildir, domain)
    assert set(got) == {f"r{i}@{domain}" for i in range(readers)}  # nobody missed
    extra = sum(n - 1 for n in got.values())
    print(f"copies accepted twice after the kill: {extra}")  # shown with pytest -s
    # a copy the server accepted just before the kill, not yet recorded: at most one
    # per connection of the killed worker
    assert extra <= connections, got.most_common(3)


@pytest.mark.postgres
def test_send_with_two_workers_delivers_each_message_once(tmp_path: Path) -> None:
    from .conftest import Recorder, running_smtp

    with new_pg_database() as url, running_smtp(Recorder()) as (controller, recorder):
        config = project(tmp_path, url, controller.port, "127.0.0.1")
        domain = "two.example.org"
        app = make_app(load_settings(str(config)))
        app.engine  # noqa: B018  (creates the schema)
        seed(url, domain, 60)
        proc = subprocess.run(
            [sys.executable, "-m", "digest.cli", "-c", str(config), "send", "--workers", "2"],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")},
            capture_output=True,
            timeout=120,
            check=False,
        )
        out = proc.stdout.decode()
        assert proc.returncode == 0, proc.stderr.decode()
        assert "published issue #1" in out and "worker:" in out  # the child's summary
        got = Counter(to for tos, _ in recorder.messages for to in tos)
        assert got == Counter({f"r{i}@{domain}": 1 for i in range(60)})
        with app.session() as s:
            assert Counter(s.scalars(select(Delivery.status))) == Counter({"sent": 60})
        app.engine.dispose()


def test_status_lists_a_live_worker_and_sigterm_stops_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.cli.main import main
    from digest.state.models import Worker

    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    config = project(tmp_path, url, 1, "127.0.0.1")  # nothing to send: no server needed
    app = make_app(load_settings(str(config)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "digest.cli", "-c", str(config), "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def registered() -> bool:
        with app.session() as s:
            return s.scalar(select(func.count()).select_from(Worker)) == 1

    wait_for(registered, 60, "the worker to register")
    shown = CliRunner().invoke(main, ["-c", str(config), "status"])
    assert shown.exit_code == 0, shown.output
    assert "workers:  1 delivering" in shown.output
    assert f"pid {worker.pid} on" in shown.output and "0 sent, 0 failed" in shown.output
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 143, err.decode()
    assert b"worker: 0 sent, 0 failed, 0 deferred" in out
    assert not registered()  # it unregistered on the way out
    shown = CliRunner().invoke(main, ["-c", str(config), "status"])
    assert "workers:  none delivering" in shown.output


def test_the_rate_limit_is_shared_by_the_live_workers(tmp_path: Path) -> None:
    from digest.mail import workers
    from digest.mail.delivery import Policy, Sender, Stops

    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    config = project(tmp_path, url, 1, "127.0.0.1")
    app = make_app(load_settings(str(config)))
    with app.engine.begin() as conn:
        workers.register(conn, datetime.now(UTC))  # another live worker
    policy = Policy(rate_limit=20.0, lease=30.0)
    sender = Sender(app.engine, app.transport, app._mailing(), policy, app.clock, None, Stops.of())
    sender._start()
    assert sender.limiter.interval == 2 / 20.0  # two live workers: 10 messages/s each
    sender._finish(set())
    with app.engine.begin() as conn:
        assert workers.live_count(conn, datetime.now(UTC), 30.0) == 1
