"""readers' chosen topics under their current slugs

When an area of the vocabulary is renamed or merged, its old slug is listed in
``aliases`` of the area that now covers it. Each subscriber's (and each pending sign-up's)
stored topics are rewritten here through those aliases: an old slug becomes the slug of
the area that replaced it (duplicates dropped, order kept). A slug no area names — a
configured theme, a discovered topic, an area of a user's areas_file — is kept as it is,
so nothing a reader chose is lost; sending resolves old slugs again (mail/variants.py), so
the aliases of a user's areas_file work too.

The aliases are read from the bundled ``areas.toml`` (the file itself, not the module:
the state does not import the sections), or from the file given as the Alembic
attribute ``areas_file``. Downgrading keeps the current slugs (they mean the same).

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-03
"""

import json
import tomllib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None

BUNDLED = Path(__file__).resolve().parents[3] / "sections" / "areas.toml"


def _aliases(path: Path) -> dict[str, str]:
    """Old slug -> current slug, from the [[area]] tables of an areas file."""
    areas = tomllib.loads(path.read_text(encoding="utf-8")).get("area", [])
    current = {a.get("slug") for a in areas if isinstance(a, dict)}
    out: dict[str, str] = {}
    for area in areas:
        if not isinstance(area, dict) or not isinstance(area.get("slug"), str):
            continue
        for old in area.get("aliases", []) or []:
            if isinstance(old, str) and old not in current:
                out.setdefault(old.strip(), area["slug"])
    return out


def _mapped(themes: list[Any], aliases: dict[str, str]) -> list[Any]:
    out: list[Any] = []
    for slug in themes:
        new = aliases.get(slug, slug) if isinstance(slug, str) else slug
        if new not in out:
            out.append(new)
    return out


def upgrade() -> None:
    given = context.config.attributes.get("areas_file")
    aliases = _aliases(Path(given) if given else BUNDLED)
    if not aliases:
        return
    conn = op.get_bind()
    for name in ("subscribers", "signups"):
        table = sa.table(name, sa.column("themes", sa.JSON))
        as_text = table.c.themes.cast(sa.Text)
        for (raw,) in conn.execute(sa.select(as_text).distinct()).all():
            if raw is None:
                continue
            themes = json.loads(raw) or []
            new = _mapped(themes, aliases) if isinstance(themes, list) else themes
            if new != themes:
                conn.execute(table.update().where(as_text == raw).values(themes=new))


def downgrade() -> None:
    pass
