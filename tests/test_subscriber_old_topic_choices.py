"""A reader's choice stored under an old slug keeps working: the upgrade rewrites it to
the slug of the area that now covers it, and sending resolves old slugs again."""

from __future__ import annotations

import json
from pathlib import Path

from alembic import command
from sqlalchemy import text

from digest.state import db
from tests.test_subscriber_chosen_topics import AREAS


def test_the_upgrade_maps_old_slugs_and_keeps_unknown_ones(
    tmp_path: Path, database_url: str
) -> None:
    engine = db.make_engine(database_url)
    cfg = db.alembic_config(engine)
    command.upgrade(cfg, "0009")
    stored = {
        "old@example.org": ["music-generation", "vision"],
        "both@example.org": ["music-generation", "music"],
        "gone@example.org": ["a-configured-theme", "speech"],
        "all@example.org": [],
    }
    with engine.begin() as conn:
        for i, (address, themes) in enumerate(stored.items()):
            conn.execute(
                text(
                    "INSERT INTO subscribers (key, address, name, status, themes, token,"
                    " bounce_count, created_at) VALUES (:a, :b, '', 'active', :t, :k, 0,"
                    " '2026-01-01 08:00:00')"
                ),
                {"a": address, "b": address, "t": json.dumps(themes), "k": f"token{i}"},
            )
        conn.execute(
            text(
                "INSERT INTO signups (key, address, themes, token_hash, ip_hash, created_at,"
                " expires_at) VALUES ('new@example.org', 'new@example.org', :t, 'h', 'i',"
                " '2026-01-01 08:00:00', '2026-01-02 08:00:00')"
            ),
            {"t": json.dumps(["music-generation"])},
        )
    areas = tmp_path / "areas.toml"
    areas.write_text(AREAS)
    cfg.attributes["areas_file"] = str(areas)
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        got = {
            a: json.loads(t) if isinstance(t, str) else t
            for a, t in conn.execute(text("SELECT address, themes FROM subscribers"))
        }
        [signup] = conn.execute(text("SELECT themes FROM signups")).scalars()
    engine.dispose()
    assert got == {
        "old@example.org": ["music", "vision"],
        "both@example.org": ["music"],
        "gone@example.org": ["a-configured-theme", "speech"],  # nothing is lost
        "all@example.org": [],
    }
    assert (json.loads(signup) if isinstance(signup, str) else signup) == ["music"]
