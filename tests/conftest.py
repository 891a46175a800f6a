"""Shared fixtures: real SQLite/PostgreSQL state, a real SMTP server (aiosmtpd), sample
dumps. Helpers that tests import live in tests/support/, never here or in a test file."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from digest.config import Settings
from tests.support.dumps import SAMPLE_FILES
from tests.support.postgres import new_pg_database
from tests.support.settings import make_settings
from tests.support.smtp import Recorder, running_smtp

# Property tests must not fail because the machine is busy: no per-example deadline,
# and no health check that measures how fast examples are generated.
hypothesis_settings.register_profile(
    "digest", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("digest")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/ from what the code produces now (see `make golden`)",
    )


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Recorder]]:
    with running_smtp(Recorder()) as server:
        yield server


@pytest.fixture
def dumps_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "dumps"
    folder.mkdir()
    for f in SAMPLE_FILES:
        shutil.copy2(f, folder / f.name)
    return folder


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'digest.db'}"
        return
    with new_pg_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, dumps_dir: Path, database_url: str) -> Settings:
    s = make_settings(tmp_path, dumps_dir)
    return replace(s, digest=replace(s.digest, database_url=database_url))
