"""The small project the delivery tests share: five papers in two configured themes,
sent over SMTP to a server of the test, with fast retries."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from digest.app import App, subscribing
from digest.config import DigestSection, EmailSection, Settings, ThemeConfig
from digest.state.models import Delivery
from tests.support.dumps import write_dump
from tests.support.waiting import HANG

MOE = ThemeConfig("Mixture of experts", ("mixture of experts", "moe"))
MUSIC = ThemeConfig("Music and audio", ("music", "audio"))
PAPERS = [
    ("Sparse mixture of experts at scale", "We route tokens to experts. " * 6),
    ("Routing in MoE transformers", "A router for mixture of experts. " * 6),
    ("Music generation with diffusion", "We generate music and audio. " * 6),
    ("Audio tokenizers for speech", "Audio codecs for music. " * 6),
    ("A study of optimisers", "Adam and friends, compared. " * 6),
]


def small_settings(tmp_path: Path, database_url: str, port: int, **email: object) -> Settings:
    """Five papers in two configured themes; fast retries, and an SMTP timeout that only
    a hung server reaches."""
    dumps = tmp_path / "dumps"
    dumps.mkdir(exist_ok=True)
    write_dump(dumps / "a.txt", PAPERS)
    base = {
        "transport": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_timeout": HANG,
        "retry_seconds": 0.05,
        "max_attempts": 3,
        "connections": 2,
        "recipients": [],
    }
    return Settings(
        digest=DigestSection(
            dumps_dir=str(dumps),
            state_dir=str(tmp_path / "state"),
            database_url=database_url,
            base_url="https://news.example.org",
        ),
        email=EmailSection(**(base | email)),  # type: ignore[arg-type]
        themes=(MOE, MUSIC),
        base_dir=tmp_path,
        source="test",
    )


def subscribe(app: App, *addresses: str, themes: str | None = None) -> None:
    book = subscribing.book(app)
    for a in addresses:
        book.add(a, themes=themes)


def states(app: App) -> dict[str, str]:
    with app.session() as s:
        rows = s.execute(select(Delivery.address, Delivery.status).order_by(Delivery.id))
        return {a: st for a, st in rows}


def addresses(n: int) -> list[str]:
    return [f"reader{i}@example.org" for i in range(n)]
