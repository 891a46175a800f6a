"""What the daemon's log says at a start and when dumps arrive: events only, each once
(no Alembic chatter, no "dump seen" for dumps read at an earlier start), and in cron
mode when the new papers will be published."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.dumps import SAMPLE_FILES
from tests.test_daemon import DaemonProc, daemons, drop, project  # noqa: F401 (daemons: a fixture)


def test_a_restart_logs_only_what_is_new_and_when_it_publishes(
    tmp_path: Path,
    daemons: list[DaemonProc],  # noqa: F811 (the fixture)
) -> None:
    folder = project(tmp_path, 'mode = "cron"\ncron = "0 8 1 1 *"', "recipients = []")
    for f in SAMPLE_FILES[:2]:
        shutil.copy2(f, folder / "dumps" / f.name)
    first = DaemonProc(folder)
    daemons.append(first)
    first.wait_log("ingested", count=2)
    assert first.stop() == 0
    second = DaemonProc(folder)
    daemons.append(second)
    second.started()
    new = SAMPLE_FILES[2]
    drop(folder, new.name, new.read_bytes())  # read after the old ones were offered again
    second.wait_log(f"ingested {new.name}")
    second.wait_log("new papers: next publish: ")
    assert second.stop() == 0
    log = second.text()
    assert "Context impl" not in log and "non-transactional DDL" not in log, log
    seen = [line for line in log.splitlines() if "dump seen" in line]
    assert len(seen) == 1 and new.name in seen[0], log
    assert "Context impl" not in first.text()
