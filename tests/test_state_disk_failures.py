"""An unlucky operator's state: a full disk, a corrupt or foreign
database file, a read-only state folder. Each is one line naming the file and what to
do, a non-zero exit, and nothing already stored is lost. The state lives on a real
small file system (tmpfs, mounted by the test: CI runs as root)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from .support.dumps import SAMPLE_FILES


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", "-c", str(root / "digest.toml"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )


def mount(target: Path, *options: str) -> None:
    done = subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(done.stderr.strip() or f"mount {options} failed")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A settings file, a dumps folder with the first sample, and state/ on its own
    16 MB tmpfs."""
    state = tmp_path / "state"
    state.mkdir()
    try:
        mount(state, "-t", "tmpfs", "-o", "size=16m", "tmpfs")
    except OSError as exc:  # not root, or no mount namespace: the test cannot be real
        pytest.skip(f"cannot mount a tmpfs for the state ({exc}); run as root")
    (tmp_path / "dumps").mkdir()
    shutil.copy2(SAMPLE_FILES[0], tmp_path / "dumps")
    (tmp_path / "digest.toml").write_text(
        '[digest]\ndumps_dir = "dumps"\nstate_dir = "state"\n'
        '[email]\nrecipients = ["ada@example.org"]\n'
    )
    try:
        first = run(tmp_path, "send")
        assert first.returncode == 0, first.stderr
        yield tmp_path
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The command failed with exactly one line on stderr holding every needle."""
    assert done.returncode != 0, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    return lines[0]


def stored(root: Path) -> tuple[str, int, int, list[int]]:
    """integrity_check, papers, sent deliveries and issue numbers (read-only)."""
    uri = f"file:{root / 'state' / 'digest.db'}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        return (
            conn.execute("PRAGMA integrity_check").fetchone()[0],
            conn.execute("SELECT count(*) FROM papers").fetchone()[0],
            conn.execute("SELECT count(*) FROM deliveries WHERE status='sent'").fetchone()[0],
            [n for (n,) in conn.execute("SELECT issue FROM digests ORDER BY issue")],
        )


def fill(folder: Path, leave: int) -> Path:
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as fh:
        fh.truncate(0)
        chunk = b"\0" * 65536
        left = max(0, free - leave)
        while left > 0:
            try:
                left -= fh.write(chunk[: min(left, len(chunk))])
            except OSError:
                break
    return filler


@pytest.mark.parametrize("leave", [0, 40_000, 600_000])
def test_a_full_disk_is_one_line_and_loses_nothing(root: Path, leave: int) -> None:
    before = stored(root)
    assert before[0] == "ok" and before[3] == [1]
    shutil.copy2(SAMPLE_FILES[1], root / "dumps")
    filler = fill(root / "state", leave)
    line = one_line_error(run(root, "send"), "state")
    assert "space" in line, line
    status = run(root, "status")  # must not crash: it shows the state read-only
    assert status.returncode == 0, status.stderr
    assert "papers:" in status.stdout
    assert "last digest: #" in status.stdout
    assert "Traceback" not in status.stderr
    filler.unlink()
    after_failure = stored(root)
    assert after_failure[0] == "ok"
    assert after_failure[1] >= before[1]  # nothing stored was lost
    assert after_failure[2] >= before[2]
    assert after_failure[3][0] == 1
    again = run(root, "send")  # with space again, the same command finishes the job
    assert again.returncode == 0, again.stderr
    final = stored(root)
    assert final[3] == [1, 2] and final[1] > before[1]
    assert final[2] == 2  # ada got both issues
    for page in ("feed.xml", "atom.xml", "archive/1.html", "archive/2.html"):
        assert (root / "state" / "public" / page).stat().st_size > 0


@pytest.mark.parametrize("damage", ["foreign", "malformed"])
def test_a_corrupt_database_is_one_line_and_left_as_it_is(root: Path, damage: str) -> None:
    db = root / "state" / "digest.db"
    # every page in the database file and none left in a WAL that could stand in for it
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for side in ("digest.db-wal", "digest.db-shm"):
        (root / "state" / side).unlink(missing_ok=True)
    if damage == "foreign":
        db.write_bytes(b"This is a spreadsheet, not a database.\n" * 2000)
    else:
        raw = bytearray(db.read_bytes())
        raw[4096:] = b"\xa5" * (len(raw) - 4096)  # all but the header page overwritten
        db.write_bytes(bytes(raw))
    shutil.copy2(SAMPLE_FILES[1], root / "dumps")
    kept = db.read_bytes()
    for command in (("send",), ("status",), ("subscribers", "list")):
        one_line_error(run(root, *command), "digest.db", "backup")
    assert db.read_bytes() == kept


def test_a_read_only_state_folder_is_one_line_and_loses_nothing(root: Path) -> None:
    before = stored(root)
    shutil.copy2(SAMPLE_FILES[1], root / "dumps")
    mount(root / "state", "-o", "remount,ro")
    try:
        one_line_error(run(root, "send"), "state", "read-only")
        status = run(root, "status")
        assert status.returncode == 0, status.stderr
        assert "last digest: #1" in status.stdout
    finally:
        mount(root / "state", "-o", "remount,rw")
    assert stored(root) == before
    again = run(root, "send")
    assert again.returncode == 0, again.stderr
    assert stored(root)[3] == [1, 2]
