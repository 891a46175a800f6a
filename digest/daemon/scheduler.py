"""`digest run`: a daemon that watches the dumps folder and publishes on a schedule.

APScheduler 3 jobs, with the pitfalls of design.md handled: explicit job ids, a
persistent job store in the state database (so a run missed while the daemon was
down fires once on restart, within `grace_seconds`), coalescing, one instance at a
time, module-level job functions that take no engine, and an explicit timezone.
The daemon calls the same pipeline as `digest send`; it has no logic of its own.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from digest.app import App, delivering, ingesting, publishing, scheduling
from digest.config import Settings, cron_trigger, schedule_zone
from digest.errors import DigestError, printable
from digest.ingest.folder import scan
from digest.ingest.ledger import DumpStatus


class Serving(Protocol):
    """The web server running in a thread (what `digest.web.server.serve_in_thread`
    returns; the daemon does not import the web server)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def mismatch(self) -> str: ...
    def stop(self) -> None: ...


ServeInThread = Callable[[App], Serving]

log = logging.getLogger(__name__)

PUBLISH_JOB = "publish"  # the cron schedule
DEBOUNCE_JOB = "publish-after-new-dump"  # mode = on_new_dump
POLL_JOB = "poll-dumps"
RETRY_JOB = "retry-deliveries"
STALE_KEY = "stale_warned_at"

_daemon: Daemon | None = None  # the running daemon; jobs reach it through here


def publish_job() -> None:
    """Job function (pickled by reference into the job store)."""
    if _daemon is not None:
        _daemon.run_job(_daemon.publish)


def poll_job() -> None:
    if _daemon is not None:
        _daemon.run_job(_daemon.poll)


def retry_job() -> None:
    if _daemon is not None:
        _daemon.run_job(_daemon.retry)


@dataclass
class Watcher:
    """Finds files that are complete: size and mtime unchanged for `settle` seconds."""

    folder: Path
    settle: float
    clock: Callable[[], float] = time.monotonic
    changing: dict[Path, tuple[int, int, float]] = field(default_factory=dict)
    done: dict[Path, tuple[int, int]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # entries already reported

    def ready(self) -> list[Path]:
        now, ready = self.clock(), []
        present = set()
        candidates, refused = scan(self.folder)
        for r in refused:
            if r.path not in self.refused:
                log.warning("%s", r.error)
        self.refused = {r.path for r in refused}
        for path in candidates:
            try:
                st = path.stat()
            except OSError:
                continue
            sig = (st.st_size, st.st_mtime_ns)
            present.add(path)
            if self.done.get(path) == sig:
                continue
            seen = self.changing.get(path)
            if seen is None or seen[:2] != sig:
                self.changing[path] = (*sig, now)
            elif now - seen[2] >= self.settle:
                ready.append(path)
        for gone in set(self.changing) - present:
            del self.changing[gone]
        return ready

    def mark_done(self, paths: list[Path]) -> None:
        for path in paths:
            size, mtime_ns, _ = self.changing.pop(path)
            self.done[path] = (size, mtime_ns)


class _Signals:
    """SIGTERM and SIGINT for the daemon's main thread. The handlers touch no lock: a
    handler that set a threading.Event would deadlock if the signal landed while this
    thread was inside that Event's own wait() (holding its lock). Python's C-level handler
    writes the signal's byte to a wakeup pipe instead, and ``wait`` reads it."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __enter__(self) -> _Signals:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._old_fd = signal.set_wakeup_fd(self._write)
        self._old = {sig: signal.signal(sig, lambda *_: None) for sig in self.SIGNALS}
        return self

    def wait(self) -> None:
        """Until the first SIGTERM or SIGINT (one that came earlier ends it at once)."""
        os.read(self._read, 1)  # the write end stays open: this returns only a signal's byte

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        signal.set_wakeup_fd(self._old_fd)
        os.close(self._read)
        os.close(self._write)


class Daemon:
    """Wires the pipeline to a scheduler; one per process."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings: Settings = app.settings
        sched = self.settings.schedule
        self.zone = schedule_zone(sched.timezone)
        self.watcher = Watcher(self.settings.dumps_dir, sched.settle_seconds)
        self.started = datetime.now(UTC)
        self.stop = threading.Event()
        self._busy = 0  # jobs in progress
        self._idle = threading.Condition()
        self.scheduler = BackgroundScheduler(
            jobstores={
                "default": scheduling.job_store(app),
                "memory": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(sched.grace_seconds),
            },
            timezone=self.zone,
        )

    # jobs -------------------------------------------------------------------

    def run_job(self, job: Callable[[], None]) -> None:
        """Run a job unless we are stopping; counted so that shutdown can wait for it."""
        with self._idle:
            if self.stop.is_set():
                return
            self._busy += 1
        try:
            job()
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _drain(self) -> None:
        """Wait for the jobs in progress. APScheduler's shutdown(wait=True) holds its job
        store lock while it waits, so a job that touches the scheduler would deadlock it:
        pause first, let the jobs finish, then shut down."""
        self.scheduler.pause()
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0)

    def poll(self) -> None:
        try:
            ready = self.watcher.ready()
            if ready:
                self._ingest(ready)
            self._check_stale()
        except DigestError as exc:
            log.error("poll failed: %s", exc)

    def _ingest(self, ready: list[Path]) -> None:
        with scheduling.publish_lock(self.app, wait=300):
            report = ingesting.ingest(self.app, ready)
        self.watcher.mark_done(ready)
        for d in report.dumps:  # a dump read before (each one, at every start) is not news
            if d.status != DumpStatus.KNOWN:
                log.info("dump seen: %s", printable(Path(d.path).name))
        if any(d.status == DumpStatus.INGESTED for d in report.dumps):
            self._set_meta(STALE_KEY, None)
            if self.settings.schedule.mode == "on_new_dump" and report.new_papers:
                self._debounce()
            elif report.new_papers:
                self._log_next(f"{report.new_papers} new papers: ")

    def _debounce(self) -> None:
        when = datetime.now(self.zone) + timedelta(seconds=self.settings.schedule.debounce_seconds)
        self.scheduler.add_job(
            publish_job, DateTrigger(when), id=DEBOUNCE_JOB, replace_existing=True
        )
        log.info(
            "new papers: publishing at %s unless more dumps arrive", when.isoformat(" ", "seconds")
        )

    def publish(self) -> None:
        if self.settings.schedule.mode == "on_new_dump" and self.watcher.changing:
            # `send` leaves a file still being written for later; wait for it instead of
            # publishing without it and again a moment later
            log.info("a dump is still being written: publishing once it is complete")
            self._debounce()
            return
        try:
            report = publishing.send(self.app, lock_wait=600, stop=self.stop, settle_wait=False)
        except DigestError as exc:
            log.error("publish failed: %s", exc)
            return
        if report.issue is None:
            log.info("%s", report.reason)
        self._log_next()

    def retry(self) -> None:
        """Deliveries deferred by a temporary failure go out when due, not only at the
        next publish. Skipped while another process holds the publish lock."""
        try:
            with scheduling.publish_lock(self.app):
                d = delivering.deliver_pending(self.app, stop=self.stop)
        except DigestError as exc:
            log.info("delivery retry postponed: %s", exc)
            return
        if d.sent or d.failed or d.deferred:
            log.info(
                "delivery retry: %d sent, %d failed, %d deferred", d.sent, d.failed, d.deferred
            )

    # stale source -------------------------------------------------------------

    def _check_stale(self) -> None:
        days = self.settings.schedule.stale_days
        if days <= 0 or self._get_meta(STALE_KEY):
            return
        last = scheduling.last_ingest(self.app)
        since = max(last or self.started, self.started)
        idle = datetime.now(UTC) - since
        if idle < timedelta(days=days):
            return
        message = (
            f"no new dump in {self.settings.dumps_dir} for {idle.days} days "
            f"(since {since:%Y-%m-%d %H:%M} UTC); is the source still being saved?"
        )
        log.warning("stale source: %s", message)
        self._set_meta(STALE_KEY, datetime.now(UTC).isoformat())
        self._mail_admin("digest: no new dumps", message)

    def _mail_admin(self, subject: str, body: str) -> None:
        try:
            admin = delivering.alert_admin(self.app, subject, body)
        except Exception as exc:  # a notice must never stop the daemon
            log.error("could not mail %s: %s", self.settings.schedule.admin_email, exc)
            return
        if admin:
            log.info("mailed %s about the stale source", admin)

    def _get_meta(self, key: str) -> str | None:
        return scheduling.note(self.app, key)

    def _set_meta(self, key: str, value: str | None) -> None:
        scheduling.set_note(self.app, key, value)

    # lifecycle ----------------------------------------------------------------

    def install_jobs(self) -> None:
        """Keep a stored job whose schedule is unchanged (its missed run must survive the
        restart); replace it when the schedule changed."""
        sched = self.settings.schedule
        self.scheduler.add_job(
            poll_job, "interval", seconds=sched.poll_seconds, id=POLL_JOB,
            jobstore="memory", replace_existing=True, next_run_time=datetime.now(self.zone),
        )  # fmt: skip
        self.scheduler.add_job(
            retry_job, "interval", minutes=sched.retry_minutes, id=RETRY_JOB,
            jobstore="memory", replace_existing=True,
        )  # fmt: skip
        stored = self.scheduler.get_job(PUBLISH_JOB)
        if sched.mode != "cron":
            if stored is not None:
                stored.remove()
            return
        trigger = cron_trigger(sched.cron, self.zone)
        if stored is None or str(stored.trigger) != str(trigger):
            self.scheduler.add_job(publish_job, trigger, id=PUBLISH_JOB, replace_existing=True)

    def _log_next(self, news: str = "") -> None:
        jobs = [self.scheduler.get_job(j) for j in (PUBLISH_JOB, DEBOUNCE_JOB)]
        times = [j.next_run_time for j in jobs if j is not None and j.next_run_time]
        if times:
            log.info("%snext publish: %s", news, min(times).isoformat(" ", "seconds"))
        elif self.settings.schedule.mode == "on_new_dump":
            log.info("%snext publish: when a new dump arrives", news)

    def run(self, *, serve: ServeInThread | None = None) -> None:
        """Run until SIGTERM/SIGINT; the job in progress finishes before exit. With
        `serve` (the web server's `serve_in_thread`, given by the program), the web
        server runs in this process too (a thread)."""
        global _daemon
        with (
            scheduling.daemon_lock(self.app),
            _Signals() as signals,
        ):
            _daemon = self
            server = self._start_server(serve) if serve else None
            self.scheduler.start(paused=True)
            try:
                self.install_jobs()
                self.scheduler.resume()
                self._log_start()
                signals.wait()
                self.stop.set()
                log.info("stopping: finishing the job in progress")
                self._drain()
            finally:
                self.scheduler.shutdown(wait=True)
                if server is not None:
                    server.stop()
                _daemon = None
        log.info("daemon stopped")

    def _start_server(self, serve: ServeInThread) -> Serving:
        serving = serve(self.app)
        base = self.settings.base_url
        log.info("web server at %s/ (listening on %s:%d)", base, serving.host, serving.port)
        if serving.mismatch:
            log.warning("%s", serving.mismatch)
        return serving

    def _log_start(self) -> None:
        sched = self.settings.schedule
        how = f" ({sched.cron}, {self.zone})" if sched.mode == "cron" else ""
        log.info(
            "daemon started: watching %s every %gs, mode %s%s",
            self.settings.dumps_dir,
            sched.poll_seconds,
            sched.mode,
            how,
        )
        self._log_next()
