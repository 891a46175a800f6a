"""What digest keeps is readable by its own user only: the state folder is 0700 and the
database (addresses, tokens, the web secret), its journal, the locks, the daemon's log
and the outbox are 0600; the public pages and feeds stay 0644 for whoever serves them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from digest.app import make_app
from tests.support.dumps import SAMPLE_FILES
from tests.support.settings import make_settings
from tests.support.waiting import HANG

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The real `digest` command in a child process started with the usual umask 022."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHONPATH"] = str(ROOT)
    old = os.umask(0o022)
    try:
        return subprocess.run(
            [sys.executable, "-m", "digest", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG * 3,
        )
    finally:
        os.umask(old)


def test_send_keeps_the_state_private_and_the_public_files_readable(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    shutil.copy2(SAMPLE_FILES[0], dumps / SAMPLE_FILES[0].name)
    config = tmp_path / "digest.toml"
    config.write_text(
        f'[digest]\ndumps_dir = "{dumps}"\nstate_dir = "{tmp_path / "state"}"\n'
        '[email]\nrecipients = ["ada@example.org"]\n'
        f'[schedule]\nlog_file = "{tmp_path / "state" / "daemon.log"}"\n'
    )
    result = digest_cli("-c", str(config), "send", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    state = tmp_path / "state"
    assert mode(state) == 0o700
    assert mode(state / "digest.db") == 0o600
    public = state / "public"
    private = [p for p in state.rglob("*") if p.is_file() and public not in p.parents]
    assert any(p.parent.name == "new" for p in private), private  # the outbox message
    assert {str(p.relative_to(state)): oct(mode(p)) for p in private if mode(p) & 0o077} == {}
    published = [p for p in public.rglob("*") if p.is_file()]
    assert published and all(mode(p) == 0o644 for p in published)


def test_the_database_is_created_private_by_the_library_too(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    old = os.umask(0o022)
    try:
        app = make_app(make_settings(tmp_path, dumps))
        app.web_secret()  # a write: the database and its journal exist
    finally:
        os.umask(old)
    db = tmp_path / "state" / "digest.db"
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700
    for journal in (db.with_name("digest.db-wal"), db.with_name("digest.db-shm")):
        assert not journal.exists() or mode(journal) == 0o600


def test_an_older_database_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    settings = make_settings(tmp_path, dumps)
    make_app(settings).web_secret()
    db = tmp_path / "state" / "digest.db"
    db.chmod(0o644)
    make_app(settings).web_secret()
    assert mode(db) == 0o600


def test_the_daemon_log_is_private(tmp_path: Path) -> None:
    import logging

    from digest.cli.context import setup_daemon_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    old = os.umask(0o022)
    try:
        setup_daemon_logging(False, tmp_path / "logs" / "daemon.log")
        logging.getLogger("digest").warning("one line")
    finally:
        os.umask(old)
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
    assert mode(tmp_path / "logs" / "daemon.log") == 0o600


def test_an_exported_subscriber_list_is_private(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text(f'[digest]\nstate_dir = "{tmp_path / "state"}"\n')
    added = digest_cli("-c", str(config), "subscribers", "add", "ada@example.org", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    out = tmp_path / "list.csv"
    result = digest_cli("-c", str(config), "subscribers", "export", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ada@example.org" in out.read_text(encoding="utf-8")
    assert mode(out) == 0o600  # was 0644: every local user could read the addresses
