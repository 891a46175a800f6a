"""Shared fixtures: real SQLite/PostgreSQL state, a real SMTP server (aiosmtpd), sample dumps."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digest.config import DigestSection, EmailSection, Settings, ThemeConfig

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "examples" / "dumps"
SAMPLE_FILES = sorted(SAMPLES.glob("*.txt"))
PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """aiosmtpd handler keeping every accepted message, parsed back."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


H = TypeVar("H")


@contextmanager
def running_smtp(handler: H) -> Iterator[tuple[Controller, H]]:
    """A real SMTP server (aiosmtpd) on a free port for the duration of the block."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()  # Controller(port=0) would fail its own readiness check
    try:
        yield controller, handler
    finally:
        controller.stop()


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


def make_settings(tmp_path: Path, dumps: Path, **digest_kw: object) -> Settings:
    return Settings(
        digest=DigestSection(
            dumps_dir=str(dumps),
            state_dir=str(tmp_path / "state"),
            **digest_kw,  # type: ignore[arg-type]
        ),
        email=EmailSection(recipients=["ada@example.org", "grace@example.org"]),
        themes=(
            ThemeConfig("Mixture of experts", ("mixture of experts", "moe", "experts", "router")),
            ThemeConfig("Music and audio", ("music", "audio", "song")),
        ),
        base_dir=tmp_path,
        source="test",
    )


@contextmanager
def new_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server, dropped afterwards."""
    if not PG_URL:
        pytest.fail("DIGEST_TEST_DATABASE_URL is not set: run the tests through .ci/run")
    name = f"digest_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
