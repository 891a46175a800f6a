"""Settings for tests that build the app in process."""

from __future__ import annotations

from pathlib import Path

from digest.config import DigestSection, EmailSection, Settings, ThemeConfig


def make_settings(tmp_path: Path, dumps: Path, **digest_kw: object) -> Settings:
    """State under `tmp_path`, the dumps in `dumps`, two recipients, two themes."""
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
