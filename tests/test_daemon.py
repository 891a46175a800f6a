"""`digest run` as a real separate process against a temp state folder, with a short
poll and schedules a few seconds apart; mail goes to an in-test SMTP server."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from digest.cli.main import main
from digest.daemon.scheduler import Watcher, cron_trigger
from digest.errors import ConfigError
from digest.state import locks as lock
from digest.state.models import Digest, DumpFile
from tests.support.dumps import SAMPLE_FILES
from tests.support.net import free_port
from tests.support.smtp import running_smtp
from tests.support.waiting import wait_for


class DaemonProc:
    def __init__(self, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.log = folder / f"daemon-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", "-c", str(folder / "digest.toml"), "run", *extra],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            cwd=folder,
        )

    def text(self) -> str:
        return self.log.read_text()

    def started(self) -> None:
        wait_for(lambda: "daemon started" in self.text(), what="daemon start\n" + self.text())

    def terminate(self) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        return code, time.monotonic() - t0


@pytest.fixture
def daemons() -> Iterator[list[DaemonProc]]:
    running: list[DaemonProc] = []
    yield running
    for d in running:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def project(tmp_path: Path, schedule: str, email: str) -> Path:
    (tmp_path / "dumps").mkdir(exist_ok=True)
    (tmp_path / "digest.toml").write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n\n[email]\n{email}\n\n'
        f"[schedule]\npoll_seconds = 0.2\nsettle_seconds = 0.8\n{schedule}\n"
    )
    return tmp_path


def smtp_email(port: int) -> str:
    return (
        f'transport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        'recipients = ["ada@example.org", "grace@example.org"]'
    )


def counts(folder: Path) -> tuple[int, int]:
    engine = create_engine(f"sqlite:///{folder / 'state' / 'digest.db'}")
    with engine.connect() as conn:
        dumps = conn.scalar(select(func.count()).select_from(DumpFile)) or 0
        digests = conn.scalar(select(func.count()).select_from(Digest)) or 0
    engine.dispose()
    return dumps, digests


def feed_entries(folder: Path) -> int:
    feed = folder / "state" / "public" / "feed.xml"
    return len(feedparser.parse(feed.read_bytes()).entries) if feed.exists() else 0


def test_slow_dump_is_ingested_once_complete_and_published_once(
    tmp_path: Path, smtp_server, daemons
) -> None:
    controller, recorder = smtp_server
    folder = project(
        tmp_path,
        'mode = "on_new_dump"\ndebounce_seconds = 0.5',
        smtp_email(controller.port),
    )
    daemon = DaemonProc(folder)
    daemons.append(daemon)
    daemon.started()
    # a partial name is ignored until renamed into place
    part = folder / "dumps" / "a.txt.part"
    part.write_bytes(SAMPLE_FILES[0].read_bytes())
    time.sleep(1.5)
    assert counts(folder) == (0, 0)
    part.rename(folder / "dumps" / "a.txt")
    # a dump written slowly in chunks, each pause shorter than the settle period
    data = SAMPLE_FILES[1].read_bytes()
    with (folder / "dumps" / "b.txt").open("wb") as fh:
        for i in range(0, len(data), len(data) // 4 + 1):
            fh.write(data[i : i + len(data) // 4 + 1])
            fh.flush()
            time.sleep(0.4)
    wait_for(lambda: feed_entries(folder) == 1, what="the feed entry")
    time.sleep(1.5)  # would a second digest or a partial re-read happen?
    assert counts(folder) == (2, 1)
    assert feed_entries(folder) == 1
    rcpts = sorted(r for rs, _ in recorder.messages for r in rs)
    assert rcpts == ["ada@example.org", "grace@example.org"]
    assert "dump failed" not in daemon.text() and "Traceback" not in daemon.text()
    code, took = daemon.terminate()
    assert code == 0 and took < 5
    assert "daemon stopped" in daemon.text()


def test_missed_schedule_point_publishes_once_after_restart(tmp_path: Path, daemons) -> None:
    for f in SAMPLE_FILES[:1]:
        (tmp_path / "dumps").mkdir(exist_ok=True)
        (tmp_path / "dumps" / f.name).write_bytes(f.read_bytes())
    due = datetime.now(UTC) + timedelta(seconds=8)
    cron = f"{due.second} {due.minute} {due.hour} * * *"  # once a day, 8 s from now
    folder = project(
        tmp_path,
        f'mode = "cron"\ncron = "{cron}"\ntimezone = "UTC"\ngrace_seconds = 600',
        'recipients = ["ada@example.org"]',
    )
    first = DaemonProc(folder)
    daemons.append(first)
    first.started()
    wait_for(lambda: counts(folder)[0] == 1, what="ingest")
    assert first.terminate()[0] == 0
    assert datetime.now(UTC) < due, "the first daemon must stop before the schedule point"
    assert counts(folder) == (1, 0)
    wait_for(lambda: datetime.now(UTC) > due + timedelta(seconds=1.5), "the schedule point")
    second = DaemonProc(folder)
    daemons.append(second)
    second.started()
    wait_for(lambda: counts(folder)[1] == 1, what="the missed run")
    time.sleep(1.5)
    assert counts(folder) == (1, 1)
    assert len(mailbox.Maildir(folder / "state" / "outbox", create=False)) == 1
    assert second.terminate()[0] == 0
    # a third start with nothing missed publishes nothing and duplicates no job
    third = DaemonProc(folder)
    daemons.append(third)
    third.started()
    time.sleep(1.0)
    assert third.terminate()[0] == 0
    assert counts(folder) == (1, 1)
    status = CliRunner().invoke(main, ["-c", str(folder / "digest.toml"), "status"])
    assert "daemon:   not running" in status.output
    assert "next run:" in status.output


def test_second_daemon_on_the_same_state_is_refused(tmp_path: Path, daemons) -> None:
    folder = project(tmp_path, 'mode = "on_new_dump"', "recipients = []")
    first = DaemonProc(folder)
    daemons.append(first)
    first.started()
    second = subprocess.run(
        [sys.executable, "-m", "digest.cli", "-c", str(folder / "digest.toml"), "run"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode == 1
    assert "a digest daemon is already running on this state" in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr
    status = CliRunner().invoke(main, ["-c", str(folder / "digest.toml"), "status"])
    assert f"daemon:   running (pid {first.proc.pid}" in status.output
    assert first.terminate()[0] == 0


def test_stale_source_warns_once_and_mails_the_admin(tmp_path: Path, daemons) -> None:
    folder = project(
        tmp_path,
        'mode = "on_new_dump"\nstale_days = 0.00002\nadmin_email = "admin@example.org"',
        "recipients = []",
    )
    daemon = DaemonProc(folder)
    daemons.append(daemon)
    daemon.started()
    wait_for(lambda: "stale source:" in daemon.text(), what="the stale warning")
    time.sleep(1.0)  # several more polls
    assert daemon.text().count("stale source:") == 1
    box = mailbox.Maildir(folder / "state" / "outbox", create=False)
    assert [m["To"] for m in box] == ["admin@example.org"]
    # a new dump clears the state
    (folder / "dumps" / "x.txt").write_bytes(SAMPLE_FILES[2].read_bytes())
    wait_for(lambda: daemon.text().count("stale source:") == 2, timeout=20, what="re-warning")
    assert daemon.terminate()[0] == 0


def test_send_refuses_while_another_process_publishes(tmp_path: Path, monkeypatch) -> None:
    folder = project(tmp_path, "", "recipients = []")
    monkeypatch.chdir(folder)
    from digest.config import load_settings
    from digest.state.db import make_engine

    s = load_settings(folder / "digest.toml")
    engine = make_engine(s.database_url)
    with lock.publish_lock(engine, s.state_dir):
        result = CliRunner().invoke(main, ["send"])
    assert result.exit_code == 1
    assert "another digest process is publishing" in result.output
    assert f"pid {os.getpid()}" in result.output
    assert CliRunner().invoke(main, ["send"]).exit_code == 0


def test_publish_lock_is_exclusive_on_postgres(database_url: str, tmp_path: Path) -> None:
    from digest.errors import StateError
    from digest.state.db import make_engine

    engine = make_engine(database_url)
    with (
        lock.publish_lock(engine, tmp_path),
        pytest.raises(StateError, match="another digest process is publishing"),
        lock.publish_lock(engine, tmp_path, wait=0.3),
    ):
        pass
    with lock.publish_lock(engine, tmp_path):  # released
        pass
    engine.dispose()


def test_watcher_waits_for_a_settled_file(tmp_path: Path) -> None:
    now = [0.0]
    w = Watcher(tmp_path, settle=2.0, clock=lambda: now[0])
    f = tmp_path / "d.txt"
    f.write_text("part")
    assert w.ready() == []
    now[0] = 1.0
    f.write_text("part two")  # still growing: the clock restarts
    assert w.ready() == []
    now[0] = 2.5
    assert w.ready() == []
    now[0] = 3.1
    assert w.ready() == [f]
    w.mark_done([f])
    now[0] = 10
    assert w.ready() == []  # unchanged after processing: not offered again
    (tmp_path / ".hidden").write_text("x")
    (tmp_path / "e.tmp").write_text("x")
    now[0] = 20
    assert w.ready() == []


@pytest.mark.parametrize("expr", ["0 8 * * *", "*/5 * * * * *", "30 7 * * mon-fri"])
def test_cron_expressions(expr: str) -> None:
    assert cron_trigger(expr, UTC) is not None


@pytest.mark.parametrize("expr", ["every day", "61 * * * *", "* * *"])
def test_bad_cron_is_a_config_error(expr: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron"):
        cron_trigger(expr, UTC)


class SlowRecorder:
    """Accepts every message after a pause, so a publish is still going when we stop."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.rcpts: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        await asyncio.sleep(self.delay)
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"


def test_sigterm_during_a_publish_stops_soon_and_loses_nothing(tmp_path: Path, daemons) -> None:
    """SIGTERM mid-delivery: the message in flight finishes, the rest stay pending, the
    process exits 0 at once; the next start delivers the rest, one copy each."""
    with running_smtp(SlowRecorder(0.7)) as (controller, recorder):
        email = smtp_email(controller.port).replace(
            'recipients = ["ada@example.org", "grace@example.org"]',
            'recipients = ["a@example.org", "b@example.org", "c@example.org", "d@example.org"]'
            "\nconnections = 1",
        )
        schedule = 'mode = "on_new_dump"\ndebounce_seconds = 0.2\nretry_minutes = 0.02'
        folder = project(tmp_path, schedule, email)
        daemon = DaemonProc(folder)
        daemons.append(daemon)
        daemon.started()
        (folder / "dumps" / "d.txt").write_bytes(SAMPLE_FILES[0].read_bytes())
        wait_for(lambda: "published issue #1" in daemon.text(), what="publish")
        code, took = daemon.terminate()  # while the messages are being delivered
        assert code == 0 and took < 2.5
        assert len(recorder.rcpts) < 4  # stopped early (the one in flight, if any, finished)
        again = DaemonProc(folder)
        daemons.append(again)
        again.started()
        wait_for(lambda: len(recorder.rcpts) == 4, what="the rest delivered")
        time.sleep(1.0)
        assert sorted(recorder.rcpts) == [f"{c}@example.org" for c in "abcd"]
        assert counts(folder) == (1, 1)
        assert again.terminate()[0] == 0


def test_run_serve_runs_the_web_server_in_the_same_process(tmp_path: Path, daemons) -> None:
    import http.client

    port = free_port()
    folder = project(tmp_path, 'mode = "on_new_dump"\ndebounce_seconds = 0.2', "recipients = []")
    with (folder / "digest.toml").open("a") as fh:
        fh.write(f'\n[web]\nhost = "127.0.0.1"\nport = {port}\n')
    daemon = DaemonProc(folder, "--serve")
    daemons.append(daemon)
    daemon.started()
    (folder / "dumps" / "d.txt").write_bytes(SAMPLE_FILES[0].read_bytes())
    wait_for(lambda: feed_entries(folder) == 1, what="publish")

    def get(path: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status

    wait_for(lambda: get("/feed.xml") == 200, what="the web server")
    assert get("/archive/1.html") == 200
    code, took = daemon.terminate()
    assert code == 0 and took < 10


class FlakyServer:
    """Refuses the first message with 451 (try again later), then accepts."""

    def __init__(self) -> None:
        self.refused = 0
        self.rcpts: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        if self.refused == 0:
            self.refused += 1
            return "451 4.3.0 try again later"
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"


def test_deferred_delivery_is_retried_between_publishes(tmp_path: Path, daemons) -> None:
    with running_smtp(FlakyServer()) as (controller, server):
        email = (
            f'transport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {controller.port}\n'
            'recipients = ["ada@example.org"]\nmax_attempts = 1\nretry_seconds = 0.1'
        )
        folder = project(
            tmp_path, 'mode = "on_new_dump"\ndebounce_seconds = 0.2\nretry_minutes = 0.02', email
        )
        daemon = DaemonProc(folder)
        daemons.append(daemon)
        daemon.started()
        (folder / "dumps" / "d.txt").write_bytes(SAMPLE_FILES[0].read_bytes())
        wait_for(lambda: server.refused == 1, what="the first, refused attempt")
        wait_for(lambda: server.rcpts == ["ada@example.org"], what="the retry")
        assert counts(folder) == (1, 1)  # no second digest: the retry job sent it
        assert "delivery retry: 1 sent" in daemon.text()
        assert daemon.terminate()[0] == 0
