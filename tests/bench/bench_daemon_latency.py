"""How long a dump takes from complete-on-disk to published, in "on_new_dump" mode.

Baseline, measured in the same run: `digest send` started by hand on the same dump
(process start, ingest, render, publish). The daemon's figure is that plus the
detection delay (poll + settle) and the debounce.

    python tests/bench/bench_daemon_latency.py
    pytest tests/bench -o python_files='bench_*.py' -s -k latency
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from tests.support.dumps import SAMPLE_FILES  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

SAMPLE = SAMPLE_FILES[0]


def _project(folder: Path, schedule: str) -> Path:
    (folder / "dumps").mkdir(parents=True)
    (folder / "digest.toml").write_text(
        '[digest]\ndumps_dir = "dumps"\n[email]\nrecipients = ["a@example.org"]\n'
        f'[schedule]\nmode = "on_new_dump"\n{schedule}\n'
    )
    return folder


def manual_send() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _project(Path(tmp), "")
        shutil.copy(SAMPLE, folder / "dumps" / "d.txt")
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "digest", "-c", str(folder / "digest.toml"), "send"],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - t0


def daemon_latency(schedule: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = _project(Path(tmp), schedule)
        log = folder / "daemon.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "digest", "-c", str(folder / "digest.toml"), "run"],
                stderr=stderr,
            )
        try:
            wait_for(lambda: "daemon started" in log.read_text(), "the daemon to start")
            staged = folder / "d.txt.part"
            shutil.copy(SAMPLE, staged)
            t0 = time.perf_counter()
            staged.rename(folder / "dumps" / "d.txt")  # complete on disk, atomically
            feed = folder / "state" / "public" / "feed.xml"
            wait_for(feed.exists, "the feed", interval=0.02)
            return time.perf_counter() - t0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)


def test_latency() -> None:
    baseline = manual_send()
    tuned = daemon_latency("poll_seconds = 0.5\nsettle_seconds = 1\ndebounce_seconds = 1")
    default = daemon_latency("")
    print(f"\nbaseline: `digest send` by hand on one dump:              {baseline:6.2f} s")
    print(f"digest run, poll 0.5 s / settle 1 s / debounce 1 s:        {tuned:6.2f} s")
    print(f"digest run, defaults (poll 5 s, settle 2 s, debounce 10 s): {default:6.2f} s")


if __name__ == "__main__":
    test_latency()
