"""deploy/: the systemd units pass `systemd-analyze verify`, the Dockerfiles pass
hadolint, and nginx.conf passes `nginx -t` where nginx is installed (deploy/check.sh).
No container engine runs here, so the image itself is not built by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def test_deploy_files_pass_their_checkers() -> None:
    env = dict(os.environ, HADOLINT=str(Path(sys.executable).parent / "hadolint"))
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
