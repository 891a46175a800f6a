"""The template-set loader: where templates are looked up, file by file.

First the user's ``templates_dir``, then the chosen template set (``digest.template_set``,
the look: a folder of the built-in templates), then the built-in ``default`` set. A
prefix loader also exposes each built-in set by name, so an override can
``{% extends "default:digest.html.j2" %}`` and replace a single block. A template that is
not found is reported with the whole search path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2

from digest.errors import TemplateError

__all__ = [
    "available_template_sets",
    "builtin_templates_dir",
    "loader",
    "not_found",
    "search_path",
]


def builtin_templates_dir() -> Path:
    """The built-in templates folder: ``digest/_templates`` in a wheel, else the repo's."""
    package_dir = Path(__file__).resolve().parent.parent
    bundled = package_dir / "_templates"
    return bundled if bundled.is_dir() else package_dir.parent / "templates"


def available_template_sets(builtin_dir: Path) -> list[str]:
    """The template sets: the folders under the built-in templates folder."""
    if not builtin_dir.is_dir():
        return []
    return sorted(p.name for p in builtin_dir.iterdir() if p.is_dir())


def search_path(
    template_set: str, templates_dir: Path | None, builtin_dir: Path
) -> tuple[Path, ...]:
    """The folders searched in turn; TemplateError (with the folders searched and the
    sets available) for a ``templates_dir`` that is not a folder or an unknown set.
    The set's name is a folder name (no path, no ".."): checked when the settings
    were loaded."""
    path: list[Path] = []
    if templates_dir is not None:
        if not templates_dir.is_dir():
            raise TemplateError(
                f"templates_dir {str(templates_dir)!r} is not a folder",
                hint="fix [digest] templates_dir or leave it empty",
            )
        path.append(templates_dir)
    set_dir = builtin_dir / template_set
    path.append(set_dir)
    if not set_dir.is_dir():
        raise TemplateError(
            f"unknown template set {template_set!r} (digest.template_set); searched: "
            f"{_format_path(path)}",
            hint="available template sets: "
            + (", ".join(available_template_sets(builtin_dir)) or "none"),
        )
    if template_set != "default":
        path.append(builtin_dir / "default")
    return tuple(path)


def loader(path: Sequence[Path], builtin_dir: Path, template_set: str) -> jinja2.BaseLoader:
    """The search ``path`` first, then the built-in sets by prefix (``default:``)."""
    prefixes: dict[str, jinja2.BaseLoader] = {
        name: jinja2.FileSystemLoader(builtin_dir / name) for name in {"default", template_set}
    }
    return jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader([str(p) for p in path]),
            jinja2.PrefixLoader(prefixes, delimiter=":"),
        ]
    )


def not_found(name: str, path: Sequence[Path]) -> TemplateError:
    """The error for a template ``name`` found nowhere on the search ``path``."""
    return TemplateError(
        f"template {name!r} not found; searched: {_format_path(path)}",
        hint="add it to your templates_dir or pick another template set (digest.template_set)",
    )


def _format_path(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)
