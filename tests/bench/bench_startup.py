"""Start-up figures, each next to `python -c "import click"` measured in the same run
and the same venv (median of several runs, each a fresh subprocess):

1. `digest --help`;
2. `digest status` on a sample state (one dump ingested, one subscriber);
3. `digest subscribers list` and `digest unsubscribe TOKEN` on it (after the first run
   the subscriber has left: the same reading, no write);
4. a `digest worker --drain` against an empty outbox: its whole CPU time (user + system),
   which is what a worker spends before it claims its first message.

    python tests/bench/bench_startup.py        (target: --help, status, list, unsubscribe within 4x)
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.dumps import SAMPLE_FILES  # noqa: E402

RUNS = int(os.environ.get("BENCH_STARTUP_RUNS", "7"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
for name in list(ENV):
    if name.startswith("DIGEST_"):
        del ENV[name]


def timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of `argv`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=ENV, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def median(argv: list[str], cwd: Path) -> tuple[float, float]:
    runs = [timed(argv, cwd) for _ in range(RUNS)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def sample_project(folder: Path) -> Path:
    """A project with one sample dump ingested (the state exists) and no deliveries."""
    dumps = folder / "dumps"
    dumps.mkdir()
    shutil.copy(SAMPLE_FILES[0], dumps / SAMPLE_FILES[0].name)
    config = folder / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{dumps}"\nstate_dir = "{folder / "state"}"\n'
        '[email]\ntransport = "maildir"\nrecipients = []\n',
        encoding="utf-8",
    )
    digest = [sys.executable, "-m", "digest", "-c", str(config)]
    for args in (["ingest"], ["subscribers", "add", "ada@example.org"]):
        subprocess.run([*digest, *args], cwd=folder, env=ENV, check=True, capture_output=True)
    return config


def token_of(folder: Path) -> str:
    with sqlite3.connect(folder / "state" / "digest.db") as conn:
        token: str = conn.execute("SELECT token FROM subscribers").fetchone()[0]
    return token


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = sample_project(folder)
        digest = [sys.executable, "-m", "digest", "-c", str(config)]
        token = token_of(folder)
        click_wall, click_cpu = median([sys.executable, "-c", "import click"], folder)
        rows = [
            ("digest --help", median([*digest, "--help"], folder)),
            ("digest status", median([*digest, "status"], folder)),
            ("digest subscribers list", median([*digest, "subscribers", "list"], folder)),
            ("digest unsubscribe TOKEN", median([*digest, "unsubscribe", token], folder)),
            ("digest worker --drain (empty)", median([*digest, "worker", "--drain"], folder)),
        ]
    print(f"start-up, median of {RUNS} runs (wall s, CPU s; ratios to `import click`):")
    baseline = 'python -c "import click"'
    print(f"  {baseline:32} {click_wall:6.3f}  {click_cpu:6.3f}  baseline")
    for name, (wall, cpu) in rows:
        ratios = f"{wall / click_wall:4.1f}x wall, {cpu / click_cpu:4.1f}x CPU"
        print(f"  {name:32} {wall:6.3f}  {cpu:6.3f}  {ratios}")
    print(
        "  target: --help, status, subscribers list and unsubscribe within 4.0x; the "
        "worker's CPU is what it spends before its first claim"
    )


if __name__ == "__main__":
    main()
