"""deploy/: the systemd units pass `systemd-analyze verify`, the Dockerfiles hadolint,
the shell scripts shellcheck, and nginx.conf `nginx -t` where nginx is installed
(deploy/check.sh).
Building and running the images takes minutes and root (podman), so it is not part of
the suite: deploy/container-smoke.sh does it (see the README's Deploying section)."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from digest.state import db, locks
from tests.support.dumps import ROOT
from tests.support.postgres import new_pg_database


def test_deploy_files_pass_their_checkers() -> None:
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ, HADOLINT=str(bin_dir / "hadolint"), SHELLCHECK=str(bin_dir / "shellcheck")
    )
    env["DIGEST_BIN"] = str(Path(sys.executable).parent / "digest")
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "check.sh")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemd units: ok" in result.stdout
    assert "Dockerfiles: hadolint ok" in result.stdout
    assert "shell scripts: shellcheck ok" in result.stdout


def test_every_unit_runs_a_real_command_and_the_worker_is_a_template() -> None:
    units = {p.name: p.read_text() for p in (ROOT / "deploy").glob("*.service")}
    assert set(units) == {"digest.service", "digest-web.service", "digest-worker@.service"}
    commands = {n: t.split("ExecStart=")[1].splitlines()[0].split()[1:] for n, t in units.items()}
    assert commands == {
        "digest.service": ["run"],
        "digest-web.service": ["serve"],
        "digest-worker@.service": ["worker"],
    }
    compose = (ROOT / "deploy" / "compose.yaml").read_text()
    for service in ("postgres:", "postfix:", "daemon:", "web:", "worker:", "replicas: 2"):
        assert service in compose
    # podman-compose starts one worker unless the mode is spelled out; relative folders in
    # digest.toml would resolve under its read-only mount (both seen running the stack)
    assert "mode: replicated, replicas: 2" in compose
    assert "DIGEST_DIGEST_STATE_DIR: /srv/digest/state" in compose
    assert "DIGEST_DIGEST_DUMPS_DIR: /srv/digest/dumps" in compose


UNITS = ("digest.service", "digest-web.service", "digest-worker@.service")


def _unit_values(name: str, key: str) -> list[str]:
    text_ = (ROOT / "deploy" / name).read_text()
    return [line.split("=", 1)[1] for line in text_.splitlines() if line.startswith(key + "=")]


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_scores_under_4_in_systemd_analyze_security(name: str) -> None:
    """The units scored 8.5 EXPOSED; `--offline=true` scores the file as it would run."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(ROOT / "deploy" / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) < 4.0, result.stdout


@pytest.mark.parametrize("name", UNITS)
def test_each_unit_writes_only_the_state_folder_and_creates_private_files(name: str) -> None:
    """The code (.venv) and the settings (digest.toml) stay read-only to the service."""
    assert _unit_values(name, "ReadWritePaths") == ["/srv/digest/state"]
    assert _unit_values(name, "ProtectSystem") == ["strict"]
    assert _unit_values(name, "UMask") == ["0077"]
    assert _unit_values(name, "ExecStart")[0].startswith("/srv/digest/.venv/")
    assert _unit_values(name, "Environment") == ["DIGEST_CONFIG=/srv/digest/digest.toml"]


def _open_state(url: str, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    engine = create_engine(url)
    barrier.wait(60)
    try:
        db.upgrade(engine)
        results.put("ok")
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_services_starting_together_on_an_empty_postgresql_all_open_it() -> None:
    """`compose up` starts the daemon, the web server and the workers at once on an empty
    database: each creates or migrates the schema, one at a time (found by running the
    stack: without the lock, all but one failed on the duplicate alembic_version table)."""
    ctx = multiprocessing.get_context("spawn")
    with new_pg_database() as url:
        barrier = ctx.Barrier(4)
        results: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_open_state, args=(url, barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        assert outcomes == ["ok"] * 4
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        finally:
            engine.dispose()
        assert len(versions) == 1


@pytest.mark.postgres
def test_a_lock_whose_server_connection_died_is_left_without_an_error(tmp_path: Path) -> None:
    """Stopping the compose stack, podman-compose stopped PostgreSQL before the daemon,
    which then ended with a traceback (unlocking over a dead connection). The lock died
    with the connection; leaving it must not raise, and it can be taken again."""
    with new_pg_database() as url:
        engine = create_engine(url)
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with locks.hold(locks.DAEMON, engine, tmp_path):
                with admin.connect() as conn:
                    killed = conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND objid = :k AND granted"
                        ),
                        {"k": locks.DAEMON.pg_key},
                    ).all()
                assert killed == [(True,)]
            with locks.hold(locks.DAEMON, engine, tmp_path):
                pass
        finally:
            engine.dispose()
            admin.dispose()
