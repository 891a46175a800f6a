"""Several `digest worker` processes on one PostgreSQL, sending through a real Postfix
(Debian's, started by .ci/postfix.sh) into its Maildir: one worker is SIGKILLed in the
middle, the others take its rows back, and every subscriber ends with one copy."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from digest.app import make_app, publishing
from digest.config import load_settings
from digest.state.models import Delivery
from tests.support.dumps import ROOT, write_dump
from tests.support.leases import seed, start_worker
from tests.support.postgres import new_pg_database
from tests.support.smtp import Recorder, running_smtp
from tests.support.waiting import HANG, wait_for

POSTFIX = os.environ.get("DIGEST_TEST_POSTFIX", "")  # "host:port maildir", from .ci/postfix.sh
DELIVERED_TO = re.compile(rb"^Delivered-To: (\S+)", re.M | re.I)


def postfix() -> tuple[str, int, Path]:
    if not POSTFIX:
        pytest.fail("DIGEST_TEST_POSTFIX is not set: run the tests through .ci/run (make test)")
    where, maildir = POSTFIX.split()
    host, port = where.rsplit(":", 1)
    return host, int(port), Path(maildir)


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


def project(folder: Path, url: str, port: int, host: str, email: str = "", batch: int = 20) -> Path:
    (folder / "dumps").mkdir(parents=True, exist_ok=True)
    write_dump(folder / "dumps" / "0.txt", [(f"Paper {i}", "An abstract. " * 8) for i in range(5)])
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\ndatabase_url = "{url}"\n'
        f'[email]\ntransport = "smtp"\nsmtp_host = "{host}"\nsmtp_port = {port}\n'
        f"smtp_timeout = 30.0\nconnections = 2\nclaim_batch = {batch}\nlease_seconds = 4.0\n"
        f"{email}[schedule]\npoll_seconds = 0.2\n"
    )
    return config


@pytest.mark.slow
@pytest.mark.postgres
def test_three_workers_one_killed_every_subscriber_gets_one_copy(tmp_path: Path) -> None:
    host, port, maildir = postfix()
    readers, connections = 3000, 2
    domain = f"w{uuid.uuid4().hex[:10]}.test"
    with new_pg_database() as url:
        config = project(tmp_path, url, port, host)
        app = make_app(load_settings(str(config)))
        app.database.engine  # noqa: B018  (creates the schema)
        seed(url, domain, readers)
        report = publishing.publish(app)  # publish: 3,000 pending rows
        assert report.issue == 1

        def sent() -> int:
            with app.session() as s:
                return int(s.scalar(select(func.count()).where(Delivery.status == "sent")) or 0)

        procs = [start_worker(config, "--drain") for _ in range(3)]
        wait_for(lambda: sent() >= readers // 5, "a fifth of the messages")
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
        app.database.engine.dispose()

    wait_for(lambda: not queued_for(domain), "Postfix to deliver its queue")
    got = copies(maildir, domain)
    assert set(got) == {f"r{i}@{domain}" for i in range(readers)}  # nobody missed
    extra = sum(n - 1 for n in got.values())
    print(f"copies accepted twice after the kill: {extra}")  # shown with pytest -s
    # a copy the server accepted just before the kill, not yet recorded: at most one
    # per connection of the killed worker
    assert extra <= connections, got.most_common(3)


@pytest.mark.postgres
def test_send_with_two_workers_delivers_each_message_once(tmp_path: Path) -> None:

    with new_pg_database() as url, running_smtp(Recorder()) as (controller, recorder):
        config = project(tmp_path, url, controller.port, "127.0.0.1")
        domain = "two.example.org"
        app = make_app(load_settings(str(config)))
        app.database.engine  # noqa: B018  (creates the schema)
        seed(url, domain, 60)
        proc = subprocess.run(
            [sys.executable, "-m", "digest", "-c", str(config), "send", "--workers", "2"],
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
        app.database.engine.dispose()


def test_status_lists_a_live_worker_and_sigterm_stops_it(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from digest.program import main
    from digest.state.models import Worker

    url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
    config = project(tmp_path, url, 1, "127.0.0.1")  # nothing to send: no server needed
    app = make_app(load_settings(str(config)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "digest", "-c", str(config), "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def registered() -> bool:
        with app.session() as s:
            return s.scalar(select(func.count()).select_from(Worker)) == 1

    wait_for(registered, "the worker to register")
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


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_workers_keep_one_rate_limit_together(tmp_path: Path, kind: str) -> None:
    """Two `digest worker` processes at email.rate_limit = 20 send 40 messages: the k-th
    message to arrive (or to be marked sent) comes at least k-1 intervals after the
    publish. Each send waits for a slot of the one shared bucket, slots are 50 ms apart
    and none is before the publish; a busy machine only makes sends later. Two
    per-process limits would let the 40 arrive in half the time."""
    from digest.mail.ratelimit import MICRO
    from digest.state.models import RateBucket, Worker

    rate, readers, slack = 20.0, 40, 0.02  # slack: SQLite's clock has 1 ms steps
    domain = "rate.example.org"
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
        else:
            url = stack.enter_context(new_pg_database())
        controller, recorder = stack.enter_context(running_smtp(Recorder()))
        email = f"rate_limit = {rate}\n"
        config = project(tmp_path, url, controller.port, "127.0.0.1", email, batch=5)
        app = make_app(load_settings(str(config)))
        app.database.engine  # noqa: B018  (creates the schema)
        seed(url, domain, readers)

        def count(what: Any) -> int:
            with app.session() as s:
                return int(s.scalar(select(func.count()).select_from(Worker).where(what)) or 0)

        procs = [start_worker(config) for _ in range(2)]  # polling, nothing to send yet
        wait_for(lambda: count(Worker.id > 0) == 2, "both workers to register")
        published = time.time()
        assert publishing.publish(app).issue == 1

        def sent() -> list[datetime]:
            with app.session() as s:
                return sorted(t for t in s.scalars(select(Delivery.sent_at)) if t is not None)

        wait_for(lambda: len(sent()) == readers, "every message to be sent")
        done = []
        for p in procs:
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=HANG)
            assert p.returncode == 143, err.decode()
            summary = re.search(rb"worker: (\d+) sent, 0 failed", out)
            assert summary, out
            done.append(int(summary[1]))
        assert sum(done) == readers and min(done) > 0, done  # both workers sent

        got = Counter(to for tos, _ in recorder.messages for to in tos)
        assert got == Counter({f"r{i}@{domain}": 1 for i in range(readers)})
        interval = 1 / rate
        for name, times in (
            ("arrived", sorted(recorder.received)),
            ("sent_at", [t.timestamp() for t in sent()]),
        ):
            early = [
                (k, round(t - published, 3))
                for k, t in enumerate(times)
                if t < published + k * interval - slack
            ]
            assert not early, f"{name}: message k came before k intervals: {early[:5]}"
        with app.session() as s:
            next_slot = s.scalar(select(RateBucket.next_slot))
        # the shared bucket handed out at least one slot per message, after the publish
        assert next_slot >= (published - slack + readers * interval) * MICRO
        app.database.engine.dispose()
