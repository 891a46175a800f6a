"""`digest run` as a real separate process against a temp state folder; mail goes to an
in-test SMTP server or the Maildir outbox.

Nothing here races the daemon: each step waits for the event it needs (a row in the
state, a file, a line in the log, a message at the server) with a deadline only a
hang reaches; dumps are dropped the safe way (written as `.part`, then renamed) except
where a slow writer is the point; a missed schedule point is made by moving the stored
job's next run into the past while the daemon is down, not by racing the clock; and
"nothing else happened" is shown by a later event that would have come after it.
"""

from __future__ import annotations

import asyncio
import itertools
import mailbox
import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from digest.daemon.scheduler import PUBLISH_JOB, Watcher, cron_trigger
from digest.errors import ConfigError
from digest.ingest.keys import paper_key
from digest.program import main
from digest.state import locks as lock
from digest.state.models import Delivery, Digest, DumpFile, Paper
from tests.support.dumps import SAMPLE_FILES, parse_dump, write_dump
from tests.support.net import free_port
from tests.support.smtp import release, running_smtp
from tests.support.waiting import HANG, wait_for

_logs = itertools.count()


class DaemonProc:
    """`digest run` in a child process, its log (stderr) in a file of the project."""

    def __init__(self, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.log = folder / f"daemon-{next(_logs)}.log"
        self._stderr = self.log.open("w")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "digest", "-c", str(folder / "digest.toml"), "run", *extra],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            cwd=folder,
            env=env,
        )

    def text(self) -> str:
        return self.log.read_text()

    def wait_log(self, needle: str, count: int = 1) -> None:
        wait_for(
            lambda: self.text().count(needle) >= count,
            lambda: f"{needle!r} (x{count}) in the daemon's log:\n{self.text()}",
        )

    def started(self) -> None:
        self.wait_log("daemon started")

    def stop(self) -> int:
        """SIGTERM, then the exit code once the job in progress finished."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait()

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=HANG)
        finally:
            self._stderr.close()


@pytest.fixture
def daemons() -> Iterator[list[DaemonProc]]:
    running: list[DaemonProc] = []
    yield running
    for d in running:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


def project(
    tmp_path: Path, schedule: str, email: str, *, settle: float = 0.3, digest: str = ""
) -> Path:
    """digest.toml in `tmp_path` with a short poll; dumps/ (empty unless filled)."""
    (tmp_path / "dumps").mkdir(exist_ok=True)
    (tmp_path / "digest.toml").write_text(
        f'[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n{digest}\n\n[email]\n{email}\n\n'
        f"[schedule]\npoll_seconds = 0.2\nsettle_seconds = {settle}\n{schedule}\n"
    )
    return tmp_path


def drop(folder: Path, name: str, data: bytes) -> Path:
    """Put a dump in place the safe way: written as name.part, then renamed."""
    part = folder / "dumps" / f"{name}.part"
    part.write_bytes(data)
    return part.rename(folder / "dumps" / name)


def smtp_email(port: int, *recipients: str) -> str:
    rcpts = ", ".join(f'"{r}"' for r in recipients or ("ada@example.org", "grace@example.org"))
    return (
        f'transport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nrecipients = [{rcpts}]'
    )


def state_engine(folder: Path):  # type: ignore[no-untyped-def]
    return create_engine(f"sqlite:///{folder / 'state' / 'digest.db'}")


def counts(folder: Path) -> tuple[int, int]:
    """(dump files recorded, digests published); (0, 0) before the state exists."""
    if not (folder / "state" / "digest.db").exists():
        return 0, 0
    engine = state_engine(folder)
    with engine.connect() as conn:
        dumps = conn.scalar(select(func.count()).select_from(DumpFile)) or 0
        digests = conn.scalar(select(func.count()).select_from(Digest)) or 0
    engine.dispose()
    return dumps, digests


def dump_rows(folder: Path) -> list[tuple[str, str]]:
    """(file name, status) of every dump file recorded, in the order they were read."""
    if not (folder / "state" / "digest.db").exists():
        return []
    engine = state_engine(folder)
    with engine.connect() as conn:
        rows = conn.execute(select(DumpFile.path, DumpFile.status).order_by(DumpFile.id))
        found = [(Path(path).name, status) for path, status in rows]
    engine.dispose()
    return found


def scalars(folder: Path, query):  # type: ignore[no-untyped-def]
    engine = state_engine(folder)
    with engine.connect() as conn:
        found = list(conn.scalars(query))
    engine.dispose()
    return found


def feed_entries(folder: Path) -> int:
    feed = folder / "state" / "public" / "feed.xml"
    return len(feedparser.parse(feed.read_bytes()).entries) if feed.exists() else 0


def watcher_lines(log: str, name: str) -> int:
    """How many times the daemon's watcher offered the file `name` for reading."""
    return sum(1 for line in log.splitlines() if "dump seen" in line and name in line)


def made(maildir: Path) -> bool:
    """Whether the daemon has finished making the Maildir: it makes the folder, then
    tmp/, new/ and cur/ (Python's mailbox), and reading it before cur/ is there fails."""
    return (maildir / "cur").is_dir()


def test_slow_dump_is_read_once_complete_and_a_burst_is_published_once(
    tmp_path: Path, smtp_server, daemons
) -> None:
    controller, recorder = smtp_server
    a, b = SAMPLE_FILES[0], SAMPLE_FILES[1]
    every = {paper_key(p.title) for f in (a, b) for p in parse_dump(str(f)).papers}
    only_b = {paper_key(p.title) for p in parse_dump(str(b)).papers}
    assert len(only_b) < len(every)
    # min_papers = both dumps' papers: a publish can only ever be the whole burst
    folder = project(
        tmp_path,
        'mode = "on_new_dump"\ndebounce_seconds = 0.2',
        smtp_email(controller.port),
        settle=2.0,  # far longer than the writer's pauses below
        digest=f"min_papers = {len(every)}",
    )
    daemon = DaemonProc(folder)
    daemons.append(daemon)
    daemon.started()
    # a partial name is ignored: it sits there while b.txt is written and read
    part = folder / "dumps" / "a.txt.part"
    part.write_bytes(a.read_bytes())
    # b.txt written slowly in chunks, each pause longer than a poll, shorter than settling
    data = b.read_bytes()
    step = len(data) // 4 + 1
    with (folder / "dumps" / "b.txt").open("wb") as fh:
        for i in range(0, len(data), step):
            fh.write(data[i : i + step])
            fh.flush()
            time.sleep(0.15)
    wait_for(lambda: dump_rows(folder), lambda: f"b.txt to be read:\n{daemon.text()}")
    assert dump_rows(folder) == [("b.txt", "ingested")]  # whole, once; a.txt.part unread
    assert "a.txt.part" not in daemon.text()
    part.rename(folder / "dumps" / "a.txt")
    wait_for(lambda: feed_entries(folder) == 1, lambda: f"the feed entry:\n{daemon.text()}")
    wait_for(lambda: len(recorder.messages) == 2, "both messages")
    # a later dump (of papers already sent) is read only after any second reading of
    # a.txt or b.txt would have been: then none must have happened
    known = parse_dump(str(a)).papers[:2]
    write_dump(folder / "dumps" / "c.txt.part", [(p.title, p.abstract) for p in known])
    (folder / "dumps" / "c.txt.part").rename(folder / "dumps" / "c.txt")
    wait_for(lambda: len(dump_rows(folder)) == 3, lambda: f"c.txt to be read:\n{daemon.text()}")
    rows = dump_rows(folder)
    assert sorted(name for name, _ in rows) == ["a.txt", "b.txt", "c.txt"]
    assert counts(folder) == (3, 1)
    assert len(scalars(folder, select(Paper.id))) == len(every)  # no paper from a partial read
    log = daemon.text()
    # offered at most once each: on a loaded machine the publish's own ingest may read a
    # complete dump first (then the watcher's finds it known and says nothing); read
    # once either way (the rows above)
    assert watcher_lines(log, "a.txt") <= 1 and watcher_lines(log, "b.txt") <= 1
    assert feed_entries(folder) == 1
    rcpts = sorted(r for rs, _ in recorder.messages for r in rs)
    assert rcpts == ["ada@example.org", "grace@example.org"]
    assert "Traceback" not in log
    assert daemon.stop() == 0
    assert "daemon stopped" in daemon.text()


def move_stored_publish(folder: Path, by: timedelta) -> datetime:
    """Move the stored publish job's next run by `by` (as if the daemon had been down
    while its schedule points passed); returns the new next run."""
    engine = state_engine(folder)
    with engine.begin() as conn:
        raw = conn.scalar(
            text("SELECT job_state FROM apscheduler_jobs WHERE id = :id"), {"id": PUBLISH_JOB}
        )
        state = pickle.loads(raw)
        state["next_run_time"] += by
        conn.execute(
            text(
                "UPDATE apscheduler_jobs SET job_state = :state, next_run_time = :ts WHERE id = :id"
            ),
            {
                "state": pickle.dumps(state, pickle.HIGHEST_PROTOCOL),
                "ts": state["next_run_time"].timestamp(),
                "id": PUBLISH_JOB,
            },
        )
    engine.dispose()
    return state["next_run_time"]


def stored_jobs(folder: Path) -> list[tuple[str, datetime]]:
    engine = state_engine(folder)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")).all()
    engine.dispose()
    return [(job_id, datetime.fromtimestamp(ts, UTC)) for job_id, ts in rows]


def test_missed_schedule_points_publish_once_after_restart(tmp_path: Path, daemons) -> None:
    (tmp_path / "dumps").mkdir()
    (tmp_path / "dumps" / "a.txt").write_bytes(SAMPLE_FILES[0].read_bytes())
    folder = project(
        tmp_path,
        'mode = "cron"\ncron = "0 3 * * *"\ntimezone = "UTC"\ngrace_seconds = 345600',
        'recipients = ["ada@example.org"]',
    )
    first = DaemonProc(folder)
    daemons.append(first)
    first.started()
    wait_for(lambda: counts(folder)[0] == 1, lambda: f"the ingest:\n{first.text()}")
    assert first.stop() == 0
    assert counts(folder) == (1, 0)
    [(job, due)] = stored_jobs(folder)
    assert job == PUBLISH_JOB and due > datetime.now(UTC)  # tomorrow's 03:00 at the latest
    # while the daemon was down, three daily points passed (all within grace_seconds)
    missed = move_stored_publish(folder, -timedelta(days=3))
    assert missed < datetime.now(UTC) - timedelta(days=1)
    second = DaemonProc(folder)
    daemons.append(second)
    second.started()
    outbox = folder / "state" / "outbox"
    wait_for(
        lambda: made(outbox) and len(mailbox.Maildir(outbox, create=False)) == 1,
        lambda: f"the missed run's message:\n{second.text()}",
    )
    assert second.stop() == 0  # after the job in progress, and any other it started
    log = second.text()
    assert log.count("published issue #1") == 1
    assert "nothing to publish" not in log  # the three points were coalesced into one run
    assert counts(folder) == (1, 1)
    assert len(mailbox.Maildir(outbox, create=False)) == 1
    [(job, due)] = stored_jobs(folder)
    assert job == PUBLISH_JOB and due > datetime.now(UTC)  # nothing missed any more
    # a third start with nothing missed keeps the one stored job
    third = DaemonProc(folder)
    daemons.append(third)
    third.started()
    assert third.stop() == 0
    assert counts(folder) == (1, 1)
    assert [job for job, _ in stored_jobs(folder)] == [PUBLISH_JOB]
    assert "nothing to publish" not in third.text()
    status = CliRunner().invoke(main, ["-c", str(folder / "digest.toml"), "status"])
    assert "daemon:   not running" in status.output
    assert "next run:" in status.output


def test_second_daemon_on_the_same_state_is_refused(tmp_path: Path, daemons) -> None:
    folder = project(tmp_path, 'mode = "on_new_dump"', "recipients = []")
    first = DaemonProc(folder)
    daemons.append(first)
    first.started()
    second = subprocess.run(
        [sys.executable, "-m", "digest", "-c", str(folder / "digest.toml"), "run"],
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert second.returncode == 1
    assert "a digest daemon is already running on this state" in second.stderr
    assert f"pid {first.proc.pid}" in second.stderr
    status = CliRunner().invoke(main, ["-c", str(folder / "digest.toml"), "status"])
    assert f"daemon:   running (pid {first.proc.pid}" in status.output
    assert first.stop() == 0


def test_stale_source_warns_once_and_mails_the_admin(tmp_path: Path, daemons) -> None:
    folder = project(
        tmp_path,
        'mode = "on_new_dump"\ndebounce_seconds = 3600\n'
        'stale_days = 0.00002\nadmin_email = "admin@example.org"',  # 1.7 s
        "recipients = []",
    )
    outbox = folder / "state" / "outbox"

    def admin_mails() -> list[str]:
        return [m["To"] for m in mailbox.Maildir(outbox, create=False)] if made(outbox) else []

    daemon = DaemonProc(folder)
    daemons.append(daemon)
    daemon.started()
    wait_for(lambda: admin_mails() == ["admin@example.org"], lambda: f"the mail:\n{daemon.text()}")
    # a new dump, read after several more polls, clears the state
    drop(folder, "x.txt", SAMPLE_FILES[2].read_bytes())
    wait_for(lambda: dump_rows(folder), lambda: f"x.txt to be read:\n{daemon.text()}")
    # ...and the source goes stale again: a second warning and a second mail
    daemon.wait_log("stale source:", count=2)
    wait_for(lambda: len(admin_mails()) == 2, lambda: f"the second mail:\n{daemon.text()}")
    assert daemon.stop() == 0
    lines = daemon.text().splitlines()
    [read] = [i for i, line in enumerate(lines) if "x.txt" in line and "ingested" in line]
    assert sum("stale source:" in line for line in lines[:read]) == 1  # once, not every poll
    assert sum("stale source:" in line for line in lines) == 2


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


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 8 * * *", "2026-11-27 09:00:00", "2026-11-28 08:00:00"),  # daily at 08:00
        ("*/5 * * * * *", "2026-11-27 09:00:01", "2026-11-27 09:00:05"),  # seconds first
        ("30 7 * * mon-fri", "2026-11-27 09:00:00", "2026-11-30 07:30:00"),  # Fri -> Mon
    ],
)
def test_cron_expressions(expr: str, after: str, expected: str) -> None:
    start = datetime.fromisoformat(after).replace(tzinfo=UTC)
    fire = cron_trigger(expr, UTC).get_next_fire_time(None, start)
    assert fire == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize("expr", ["every day", "61 * * * *", "* * *"])
def test_bad_cron_is_a_config_error(expr: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron"):
        cron_trigger(expr, UTC)


class HeldAtData:
    """Takes each message's data, then answers only once the test opens the gate."""

    def __init__(self) -> None:
        self.arrived = 0
        self.rcpts: list[str] = []
        self.gate = asyncio.Event()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.arrived += 1
        await self.gate.wait()
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"


def delivery_states(folder: Path) -> Counter[str]:
    return Counter(scalars(folder, select(Delivery.status)))


def test_sigterm_during_a_publish_stops_soon_and_loses_nothing(tmp_path: Path, daemons) -> None:
    """SIGTERM mid-delivery: the message in flight finishes, no other is started, the
    process exits 0; the next start delivers the rest, one copy each."""
    readers = [f"{c}@example.org" for c in "abcd"]
    with running_smtp(HeldAtData()) as (controller, server):
        email = smtp_email(controller.port, *readers) + "\nconnections = 1"
        schedule = 'mode = "on_new_dump"\ndebounce_seconds = 0.2\nretry_minutes = 0.02'
        folder = project(tmp_path, schedule, email)
        daemon = DaemonProc(folder)
        daemons.append(daemon)
        daemon.started()
        drop(folder, "d.txt", SAMPLE_FILES[0].read_bytes())
        wait_for(lambda: server.arrived == 1, lambda: f"the first message:\n{daemon.text()}")
        daemon.proc.send_signal(signal.SIGTERM)  # while that message is in flight
        daemon.wait_log("stopping: finishing the job in progress")
        release(controller, server.gate)
        assert daemon.wait() == 0
        assert server.arrived == 1 and len(server.rcpts) == 1  # the one in flight, only
        assert delivery_states(folder) == Counter(sent=1, pending=3)
        again = DaemonProc(folder)
        daemons.append(again)
        again.started()
        wait_for(lambda: len(server.rcpts) == 4, lambda: f"the rest:\n{again.text()}")
        assert again.stop() == 0
        assert sorted(server.rcpts) == readers  # one copy each, none twice
        assert delivery_states(folder) == Counter(sent=4)
        assert counts(folder) == (1, 1)


def test_run_serve_runs_the_web_server_in_the_same_process(tmp_path: Path, daemons) -> None:
    import http.client

    port = free_port()
    folder = project(tmp_path, 'mode = "on_new_dump"\ndebounce_seconds = 0.2', "recipients = []")
    with (folder / "digest.toml").open("a") as fh:
        fh.write(f'\n[web]\nhost = "127.0.0.1"\nport = {port}\n')
    daemon = DaemonProc(folder, "--serve")
    daemons.append(daemon)
    daemon.started()
    drop(folder, "d.txt", SAMPLE_FILES[0].read_bytes())
    wait_for(lambda: feed_entries(folder) == 1, lambda: f"the publish:\n{daemon.text()}")

    def get(path: str) -> int:
        """The status of a GET; 0 while nothing listens yet."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HANG)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except ConnectionRefusedError:
            return 0
        finally:
            conn.close()

    wait_for(lambda: get("/feed.xml") == 200, lambda: f"the web server:\n{daemon.text()}")
    assert get("/archive/1.html") == 200
    assert daemon.stop() == 0
    assert "daemon stopped" in daemon.text()


class FlakyServer:
    """Refuses the first message with 451 (try again later), then accepts."""

    def __init__(self) -> None:
        self.refused = 0
        self.rcpts: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.refused == 0:
            self.refused += 1
            return "451 4.3.0 try again later"
        self.rcpts.extend(envelope.rcpt_tos)
        return "250 OK"


def test_deferred_delivery_is_retried_between_publishes(tmp_path: Path, daemons) -> None:
    with running_smtp(FlakyServer()) as (controller, server):
        email = smtp_email(controller.port, "ada@example.org")
        email += "\nmax_attempts = 1\nretry_seconds = 0.1"
        folder = project(
            tmp_path, 'mode = "on_new_dump"\ndebounce_seconds = 0.2\nretry_minutes = 0.02', email
        )
        daemon = DaemonProc(folder)
        daemons.append(daemon)
        daemon.started()
        drop(folder, "d.txt", SAMPLE_FILES[0].read_bytes())
        daemon.wait_log("delivery retry: 1 sent")
        assert server.refused == 1 and server.rcpts == ["ada@example.org"]
        assert counts(folder) == (1, 1)  # no second digest: the retry job sent it
        assert daemon.stop() == 0


def test_a_signal_ends_the_daemons_wait_without_its_handler_taking_a_lock() -> None:
    """The daemon's handlers only let Python's C handler write to a wakeup pipe (setting a
    threading.Event in a handler deadlocks when the signal lands inside that Event's wait):
    a signal raised before the wait ends it, and the previous handlers come back."""
    import select

    from digest.daemon.scheduler import _Signals

    before = signal.getsignal(signal.SIGTERM)
    with _Signals() as signals:
        signal.raise_signal(signal.SIGTERM)
        readable, _, _ = select.select([signals._read], [], [], HANG)
        assert readable == [signals._read]
        signals.wait()  # returns: the signal's byte is there
    assert signal.getsignal(signal.SIGTERM) is before
