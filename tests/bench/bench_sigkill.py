"""A crash loop: random SIGKILLs of `digest send` during ingest, publish and delivery,
through the Maildir and through SMTP (an aiosmtpd sink in its own process), each
followed by a `digest send` that must finish the job. After every rerun it checks:

- `PRAGMA integrity_check` is ok;
- issue numbers are 1..N with no gap;
- every paper of every dump dropped so far is published exactly once;
- feed.xml and atom.xml parse with feedparser (bozo 0) and list the newest issue;
- no delivery is missing (every row is sent or skipped, and every sent one arrived);
- duplicates (one Message-ID received twice) are at most one per connection that
  was in flight when the process was killed.

    python tests/bench/bench_sigkill.py [KILLS] [SEED]        (default: 30 kills)

Prints one line per kill and the totals; exits 1 on the first broken invariant.
"""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SUBSCRIBERS = 120
PAPERS_PER_DUMP = 150
CONNECTIONS = 2  # SMTP connections in flight at once


# --------------------------------------------------------------------------- the sink


def sink(port: int, log_path: str) -> None:
    """An SMTP server in this process: appends each accepted Message-ID to log_path."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            await asyncio.sleep(0.005)  # a real server takes a moment: stretch delivery
            content: bytes = envelope.content  # type: ignore[attr-defined]
            for line in content.split(b"\r\n"):
                if line.lower().startswith(b"message-id:"):
                    with open(log_path, "ab") as fh:
                        fh.write(line.split(b":", 1)[1].strip() + b"\n")
                    break
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- a world


class World:
    """One state folder, its dumps and where its messages arrive."""

    def __init__(self, root: Path, transport: str, rng: random.Random) -> None:
        self.root, self.transport, self.rng = root, transport, rng
        self.dumps = root / "dumps"
        self.dumps.mkdir(parents=True)
        self.db = root / "state" / "digest.db"
        self.received = root / "received.log"
        self.sink: subprocess.Popen[bytes] | None = None
        self.dropped = 0
        email = '[email]\ntransport = "maildir"\n'
        if transport == "smtp":
            port = free_port()
            self.sink = subprocess.Popen(
                [sys.executable, __file__, "--sink", str(port), str(self.received)]
            )
            wait_port(port)
            email = (
                f'[email]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
                f"connections = {CONNECTIONS}\n"
            )
        (root / "digest.toml").write_text(
            '[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n' + email
        )
        rows = "".join(f"reader{i}@example.org\n" for i in range(SUBSCRIBERS))
        (root / "subs.csv").write_text("email\n" + rows)
        done = self.digest("subscribers", "import", str(root / "subs.csv"))
        assert done.returncode == 0, done.stderr

    def close(self) -> None:
        if self.sink is not None:
            self.sink.terminate()
            self.sink.wait(timeout=30)

    def digest(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.cmd(*args), capture_output=True, text=True, timeout=600, cwd=self.root
        )

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "digest", "-c", str(self.root / "digest.toml"), *args]

    def drop_dump(self) -> None:
        from tests.support.papers import generate

        n = self.dropped
        blocks = ["new", "Subscribe", "Mar 14"]
        for p in generate(PAPERS_PER_DUMP, seed=1000 + n):
            blocks += [f"{p.title} [batch {n}]", p.abstract]
        path = self.dumps / f"dump-{n:03d}.txt"
        path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        old = time.time() - 3600  # long settled: no rule about files still being written
        os.utime(path, (old, old))
        self.dropped += 1

    # --------------------------------------------------------------- observing

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        try:
            with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as c:
                return list(c.execute(sql))
        except sqlite3.OperationalError:
            return []

    def phase(self) -> str:
        """What a send is doing now, as the state shows it."""
        dumps = self.query("SELECT count(*) FROM dump_files")
        if not dumps or dumps[0][0] < self.dropped:
            return "ingest"
        issues = self.query("SELECT count(*) FROM digests")[0][0]
        if issues < self.dropped or self.sent_of_newest() == 0:
            return "publish"  # storing the issue, writing the feeds
        return "delivery"

    def sent_of_newest(self) -> int:
        rows = self.query(
            "SELECT count(*) FROM deliveries WHERE status = 'sent' AND digest_id = "
            "(SELECT max(id) FROM digests)"
        )
        return int(rows[0][0]) if rows else 0

    def arrived(self) -> Counter[str]:
        if self.transport == "smtp":
            if not self.received.exists():
                return Counter()
            ids = self.received.read_bytes().decode().split()
            return Counter(ids)
        box = mailbox.Maildir(str(self.root / "state" / "outbox"), create=False)
        return Counter(str(m["Message-ID"]).strip() for m in box)


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the SMTP sink did not start")


# --------------------------------------------------------------------------- invariants


def check(world: World) -> dict[str, int]:
    """Every invariant after a rerun; returns figures, raises AssertionError."""
    import feedparser

    (ok,) = world.query("PRAGMA integrity_check")[0]
    assert ok == "ok", f"integrity_check: {ok}"
    issues = [n for (n,) in world.query("SELECT issue FROM digests ORDER BY issue")]
    assert issues == list(range(1, len(issues) + 1)), f"issues not contiguous: {issues}"
    assert len(issues) == world.dropped, f"{world.dropped} dumps but {len(issues)} issues"
    (papers,) = world.query("SELECT count(*) FROM papers")[0]
    assert papers == world.dropped * PAPERS_PER_DUMP, f"{papers} papers stored"
    twice = world.query("SELECT paper_id FROM digest_items GROUP BY paper_id HAVING count(*) > 1")
    assert not twice, f"papers published twice: {twice[:5]}"
    (published,) = world.query("SELECT count(DISTINCT paper_id) FROM digest_items")[0]
    assert published == papers, f"{papers - published} papers never published"
    public = world.root / "state" / "public"
    for name in ("feed.xml", "atom.xml"):
        feed = feedparser.parse(str(public / name))
        assert feed.bozo == 0, f"{name}: {feed.get('bozo_exception')}"
        assert feed.entries and f"/archive/{issues[-1]}.html" in feed.entries[0].link
    rows = world.query("SELECT status, message_id FROM deliveries")
    statuses = Counter(s for s, _ in rows)
    assert set(statuses) <= {"sent", "skipped"}, f"deliveries left: {statuses}"
    arrived = world.arrived()
    missing = [m for s, m in rows if s == "sent" and arrived[str(m)] == 0]
    assert not missing, f"{len(missing)} sent deliveries never arrived"
    duplicates = sum(n - 1 for n in arrived.values() if n > 1)
    return {"issues": len(issues), "sent": statuses["sent"], "duplicates": duplicates}


# --------------------------------------------------------------------------- the loop


def kill_one(world: World, target: str) -> str:
    """Start a send, SIGKILL it once the state shows `target` (after a random moment);
    returns the phase it was killed in."""
    world.drop_dump()
    proc = subprocess.Popen(
        world.cmd("send"), cwd=world.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    order = ["ingest", "publish", "delivery"]
    while proc.poll() is None and time.monotonic() < deadline:
        if order.index(world.phase()) >= order.index(target):
            break
        time.sleep(0.005)
    time.sleep(world.rng.uniform(0, 0.15))
    phase = world.phase() if proc.poll() is None else "finished"
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    if phase == "delivery":
        phase += f" ({world.sent_of_newest()}/{SUBSCRIBERS} sent)"
    return phase


def run(kills: int, seed: int) -> int:
    rng = random.Random(seed)
    failures = 0
    totals: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        worlds = [World(Path(tmp) / t, t, rng) for t in ("maildir", "smtp")]
        try:
            before = {w.transport: 0 for w in worlds}
            for k in range(kills):
                world = worlds[k % 2]
                target = rng.choice(["ingest", "publish", "delivery"])
                phase = kill_one(world, target)
                again = world.digest("send")
                if again.returncode != 0:
                    print(f"kill {k + 1}: rerun failed: {again.stderr.strip()[-500:]}")
                    return 1
                try:
                    figures = check(world)
                except AssertionError as exc:
                    print(f"kill {k + 1} ({world.transport}, {phase}): INVARIANT BROKEN: {exc}")
                    return 1
                new_dups = figures["duplicates"] - before[world.transport]
                before[world.transport] = figures["duplicates"]
                bound = CONNECTIONS if world.transport == "smtp" else 1
                ok = new_dups <= bound
                failures += not ok
                totals[phase.split()[0]] += 1
                totals["duplicates"] += new_dups
                print(
                    f"kill {k + 1:2d}: {world.transport:7s} killed in {phase:23s} "
                    f"-> rerun ok; issues {figures['issues']:2d}, sent {figures['sent']:5d}, "
                    f"new duplicates {new_dups} (bound {bound}){'' if ok else '  OVER BOUND'}"
                )
        finally:
            for w in worlds:
                w.close()
    print(
        json.dumps(
            {
                "kills": kills,
                "by_phase": {k: v for k, v in totals.items() if k != "duplicates"},
                "duplicates": totals["duplicates"],
                "over_bound": failures,
            }
        )
    )
    print("all invariants held after every rerun" if not failures else "duplicates over bound")
    return 1 if failures else 0


def test_sigkill_loop() -> None:
    assert run(30, 11) == 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sink"]:
        sink(int(sys.argv[2]), sys.argv[3])
    else:
        args = [int(a) for a in sys.argv[1:3]]
        sys.exit(run(args[0] if args else 30, args[1] if len(args) > 1 else 11))
