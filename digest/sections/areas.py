"""The vocabulary of research areas papers are sorted into: a tree read from a TOML file.

The bundled file (``areas.toml`` beside this module) covers machine learning and AI. A user
file (``[digest] areas_file``) either adds to it — an area with a slug already known
replaces that area, a new slug is added — or, with ``replace = true`` at its top, replaces
it whole. Each ``[[area]]`` has ``slug``, ``name``, ``description``, ``terms`` and an
optional ``parent`` (the slug of a broader area), an optional ``section`` (the slug of the
area whose section it prints under: itself, the default, or one of its ancestors) and
optional ``aliases`` (old slugs that still name it: subscribers' stored choices and old feed
links keep working when an area is renamed or merged).

An area keeps its slug and name from one digest to the next: subscribers' chosen areas and
the per-area feeds rely on it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.config import parse_toml
from digest.errors import ConfigError

__all__ = ["BUNDLED", "Area", "Vocabulary", "bundled", "load_vocabulary"]

BUNDLED = Path(__file__).with_name("areas.toml")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Area:
    slug: str
    name: str
    description: str
    terms: tuple[str, ...]
    parent: str = ""  # slug of the broader area; "" at the top
    section: str = ""  # slug of the area whose section this one prints under ("" = itself)
    aliases: tuple[str, ...] = ()  # old slugs that still name this area

    @property
    def section_slug(self) -> str:
        return self.section or self.slug


@dataclass(frozen=True)
class Vocabulary:
    areas: tuple[Area, ...]
    source: str = str(BUNDLED)

    def __iter__(self) -> Iterator[Area]:
        return iter(self.areas)

    def __len__(self) -> int:
        return len(self.areas)

    @functools.cached_property
    def by_slug(self) -> dict[str, Area]:
        return {a.slug: a for a in self.areas}

    def children(self, slug: str) -> list[Area]:
        return [a for a in self.areas if a.parent == slug]

    @functools.cached_property
    def _children(self) -> dict[str, list[str]]:
        kids: dict[str, list[str]] = {}
        for a in self.areas:
            if a.parent:
                kids.setdefault(a.parent, []).append(a.slug)
        return kids

    def descendants(self, slug: str) -> frozenset[str]:
        """``slug`` and every area below it (empty for an unknown slug)."""
        if slug not in self.by_slug:
            return frozenset()
        found, todo = {slug}, [slug]
        while todo:
            for kid in self._children.get(todo.pop(), []):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
        return frozenset(found)

    def ancestors(self, slug: str) -> list[str]:
        """The slugs above ``slug``, nearest first."""
        out: list[str] = []
        parent = self.by_slug[slug].parent if slug in self.by_slug else ""
        while parent and parent not in out:
            out.append(parent)
            parent = self.by_slug[parent].parent
        return out

    def top(self, slug: str) -> str:
        """The top-level area above (or at) ``slug``."""
        chain = self.ancestors(slug)
        return chain[-1] if chain else slug

    def section_of(self, slug: str) -> str:
        """The slug of the section that papers of area ``slug`` print under."""
        area = self.by_slug.get(slug)
        return area.section_slug if area else slug

    @functools.cached_property
    def sections(self) -> tuple[Area, ...]:
        """The areas that are sections (print under their own name), in file order."""
        return tuple(a for a in self.areas if a.section_slug == a.slug)

    @functools.cached_property
    def _names(self) -> dict[str, str]:
        """Every way a reader may name an area — slug, old slug, name — folded, to its slug."""
        names: dict[str, str] = {}
        for a in self.areas:
            for alias in a.aliases:
                names.setdefault(alias.casefold(), a.slug)
        for a in self.areas:
            names[a.name.casefold()] = a.slug
        for a in self.areas:
            names[a.slug] = a.slug
        return names

    def resolve(self, text: str) -> str | None:
        """The slug of the area named ``text`` (its slug, an old slug or its name), or None."""
        return self._names.get(" ".join(text.split()).casefold())


def _strings(value: object, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _area(raw: object, where: str) -> Area:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[area]] must be a table")
    unknown = set(raw) - {"slug", "name", "description", "terms", "parent", "section", "aliases"}
    if unknown:
        raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}' in [[area]]")
    fields = {}
    for key in ("slug", "name", "description"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: every [[area]] needs a non-empty '{key}'")
        fields[key] = value.strip()
    if not _SLUG.fullmatch(fields["slug"]):
        raise ConfigError(
            f"{where}: slug {fields['slug']!r} must be lowercase letters, digits and hyphens"
        )
    parent = raw.get("parent", "")
    if not isinstance(parent, str):
        raise ConfigError(f"{where}: 'parent' of {fields['slug']!r} must be a slug")
    section = raw.get("section", "")
    if not isinstance(section, str):
        raise ConfigError(f"{where}: 'section' of {fields['slug']!r} must be a slug")
    terms = _strings(raw.get("terms"), where, "terms")
    if not terms:
        raise ConfigError(f"{where}: area {fields['slug']!r} needs at least one term")
    aliases = _strings(raw.get("aliases", []), where, "aliases")
    for alias in aliases:
        if not _SLUG.fullmatch(alias):
            raise ConfigError(f"{where}: alias {alias!r} of {fields['slug']!r} must be a slug")
    section = section.strip()
    return Area(
        fields["slug"],
        fields["name"],
        fields["description"],
        terms,
        parent.strip(),
        "" if section == fields["slug"] else section,
        aliases,
    )


def _read(path: Path) -> tuple[list[Area], bool]:
    """The areas in ``path`` and whether the file replaces the bundled vocabulary."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: areas file not found", hint="set [digest] areas_file to a TOML file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the areas file: {exc}") from None
    data = parse_toml(text, f"{path}: the areas file")
    raw = data.get("area", [])
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: areas are written as [[area]] tables")
    replace = data.get("replace", False)
    if not isinstance(replace, bool):
        raise ConfigError(f"{path}: 'replace' must be true or false")
    return [_area(r, str(path)) for r in raw], replace


def _check(areas: Sequence[Area], source: str) -> None:
    slugs = [a.slug for a in areas]
    seen: set[str] = set()
    for slug in slugs:
        if slug in seen:
            raise ConfigError(f"{source}: area slug {slug!r} is used twice")
        seen.add(slug)
    names = [a.name.casefold() for a in areas]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: two areas have the same name")
    for a in areas:
        if a.parent and a.parent not in seen:
            raise ConfigError(f"{source}: area {a.slug!r} has unknown parent {a.parent!r}")
        if a.parent == a.slug:
            raise ConfigError(f"{source}: area {a.slug!r} is its own parent")
    parents = {a.slug: a.parent for a in areas}
    for a in areas:  # no cycles: walking up ends within len(areas) steps
        slug, steps = a.slug, 0
        while parents.get(slug) and steps <= len(areas):
            slug, steps = parents[slug], steps + 1
        if steps > len(areas):
            raise ConfigError(f"{source}: area {a.slug!r} is in a cycle of parents")
    _check_sections_and_aliases(areas, parents, source)


def _check_sections_and_aliases(
    areas: Sequence[Area], parents: dict[str, str], source: str
) -> None:
    for a in areas:
        if not a.section:
            continue
        above, slug = set(), a.slug
        while parents.get(slug):
            slug = parents[slug]
            above.add(slug)
        if a.section not in above:
            raise ConfigError(
                f"{source}: 'section' of area {a.slug!r} must be the area itself or one of "
                f"its ancestors, not {a.section!r}"
            )
    slugs = set(parents)
    owner: dict[str, str] = {}
    for a in areas:
        for alias in a.aliases:
            if alias in slugs or owner.setdefault(alias, a.slug) != a.slug:
                raise ConfigError(f"{source}: alias {alias!r} of area {a.slug!r} is taken")


def load_vocabulary(path: str = "") -> Vocabulary:
    """The bundled vocabulary, extended or replaced by the areas file at ``path`` (if any).
    Read again only when the file changes."""
    try:
        stamp = Path(path).stat().st_mtime_ns if path else 0
    except OSError:
        stamp = -1  # let _load report it
    return _load(path, stamp)


@functools.lru_cache(maxsize=8)
def _load(path: str, stamp: int) -> Vocabulary:
    areas, _ = _read(BUNDLED)
    source = str(BUNDLED)
    if path:
        extra, replace = _read(Path(path))
        if replace:
            areas = extra
        else:
            index = {a.slug: i for i, a in enumerate(areas)}
            for a in extra:
                if a.slug in index:
                    areas[index[a.slug]] = a
                else:
                    areas.append(a)
        source = path
    _check(areas, source)
    if not areas:
        raise ConfigError(f"{source}: the areas file has no [[area]]")
    return Vocabulary(tuple(areas), source)


def bundled() -> Vocabulary:
    return load_vocabulary("")
