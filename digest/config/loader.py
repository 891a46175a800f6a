"""Settings loader: `digest.toml` (found by --config, $DIGEST_CONFIG or ./digest.toml),
overridden by DIGEST_<SECTION>_<KEY> environment variables, each value coerced to its
declared type and checked against its declared rule (ConfigError naming the key)."""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, get_type_hints

from digest.config.checks import _check_value, _shown
from digest.config.schema import (
    CONFIG_ENV,
    DEFAULT_CONFIG_NAME,
    OTHER_ENV,
    SECTIONS,
    TOOLING_PREFIX,
    Settings,
    ThemeConfig,
    old_key,
    toml_key,
)
from digest.errors import ConfigError

MAX_TOML_DEPTH = 20  # tables and arrays inside each other; settings need three or four


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """The TOML document ``text``; ConfigError (one line, naming ``where``) when it is not
    valid TOML or nests tables and arrays deeper than MAX_TOML_DEPTH (3,000 levels made
    the parser raise RecursionError with a 3,000-line traceback)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{where}: not usable TOML: nested too deeply") from None
    except ValueError as exc:  # a whole number of more than 4,300 digits
        raise ConfigError(f"{where}: not usable TOML: {_shown(str(exc))}") from None
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_TOML_DEPTH:
            raise ConfigError(
                f"{where}: not usable TOML: tables or arrays nested deeper than {MAX_TOML_DEPTH}"
            )
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            stack += [(child, depth + 1) for child in children]
    return data


def find_config(explicit: str | Path | None) -> Path | None:
    """--config, else $DIGEST_CONFIG, else ./digest.toml if present."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"{path}: config file not found", hint="run `digest init` to write one"
            )
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from ${CONFIG_ENV})")
        return path
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_settings(
    config: str | Path | None = None, *, environ: dict[str, str] | None = None
) -> Settings:
    """Load, override from the environment, and validate every setting."""
    environ = dict(os.environ) if environ is None else environ
    path = find_config(config)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        data = parse_toml(text, str(path))
    source = str(path) if path else "defaults"
    _check_environment(environ)
    unknown = set(data) - set(SECTIONS) - {"themes"}
    if unknown:
        name = sorted(unknown)[0]
        raise ConfigError(
            f"{source}: unknown section [{name}]",
            hint=_closest(name, [*SECTIONS, "themes"], "known sections"),
        )
    sections = {
        name: _load_section(name, cls, data.get(name, {}), environ, source)
        for name, cls in SECTIONS.items()
    }
    themes = _load_themes(data.get("themes", []), source)
    base_dir = path.resolve().parent if path else Path.cwd()
    return Settings(**sections, themes=themes, base_dir=base_dir, source=source)


def env_name(section: str, key: str) -> str:
    """The environment variable that overrides a setting: DIGEST_<SECTION>_<KEY>."""
    return f"DIGEST_{section}_{key}".upper()


def _check_environment(environ: dict[str, str]) -> None:
    """A DIGEST_* variable that is neither a setting nor one of OTHER_ENV is refused
    (those under TOOLING_PREFIX belong to the tests and are ignored)."""
    known = {
        env_name(name, key)
        for name, cls in SECTIONS.items()
        for f in _fields(cls)
        for key in (toml_key(f), old_key(f))
        if key
    }
    for var in sorted(environ):
        if var.startswith("DIGEST_") and var not in known | OTHER_ENV:
            if var.startswith(TOOLING_PREFIX):
                continue
            raise ConfigError(
                f"${var} is not a setting",
                hint=_closest(var, sorted(known | OTHER_ENV), "")
                or "unset it; a setting is DIGEST_<SECTION>_<KEY> (`digest init` lists them)",
            )


def _closest(name: str, known: list[str], lead: str) -> str:
    """ "did you mean X?" for the closest known name, else the list of known names."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    if close:
        return f"did you mean {close[0]}?"
    return f"{lead}: {', '.join(known)}" if lead else ""


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def _load_section(name: str, cls: type, table: Any, environ: dict[str, str], source: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    fields = {toml_key(f): f for f in _fields(cls)}
    olds = {old_key(f): f for f in _fields(cls) if old_key(f)}
    unknown = set(table) - set(fields) - set(olds)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{source}: unknown setting {name}.{key}",
            hint=_closest(key, list(fields), f"known keys of [{name}]"),
        )
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, f in fields.items():
        keys = (key, old_key(f)) if old_key(f) else (key,)
        if len(keys) == 2 and all(k in table for k in keys):
            raise ConfigError(
                f"{source}: {name}.{keys[0]} and {name}.{keys[1]} (its old spelling) are both set",
                hint=f"keep {name}.{keys[0]} only",
            )
        found = [("env", k) for k in keys if env_name(name, k) in environ]
        found += [("toml", k) for k in keys if k in table]
        if not found:
            continue
        origin, k = found[0]
        if origin == "env":
            where = f"${env_name(name, k)}"
            raw = environ[env_name(name, k)]
            values[f.name] = _coerce(raw, hints[f.name], where, from_env=True)
        else:
            where = f"{source}: {name}.{k}"
            values[f.name] = _coerce(table[k], hints[f.name], where)
        _check_value(f, values[f.name], where)
    return cls(**values)


def _coerce(value: Any, typ: Any, where: str, *, from_env: bool = False) -> Any:
    """Check (and, for environment strings, convert) one value against its declared type."""
    if typ is str:
        if isinstance(value, str):
            return value
    elif typ is int:
        if from_env:
            try:
                return int(value)
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if from_env:
            try:
                return float(value)
            except ValueError:
                pass
        elif isinstance(value, int | float) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # a whole number beyond any float
                pass
    elif typ == list[str]:
        if from_env:
            value = _env_list(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    expected = _type_name(typ)
    raise ConfigError(f"{where}: expected {expected}, got {_shown(value)}")


def _env_list(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return [part.strip() for part in raw.split(",") if part.strip()]


def _type_name(typ: Any) -> str:
    return {str: "a string", int: "a whole number", float: "a number"}.get(typ, "a list of strings")


def _load_themes(raw: Any, source: str) -> tuple[ThemeConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: themes must be an array of tables ([[themes]])")
    themes = []
    for i, item in enumerate(raw, 1):
        where = f"{source}: themes #{i}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a table with name and keywords")
        unknown = set(item) - {"name", "keywords", "description", "exclude"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: name must be a non-empty string")
        keywords = _coerce(item.get("keywords", []), list[str], f"{where} ({name}).keywords")
        exclude = _coerce(item.get("exclude", []), list[str], f"{where} ({name}).exclude")
        description = _coerce(item.get("description", ""), str, f"{where} ({name}).description")
        if not keywords:
            raise ConfigError(f"{where} ({name}): keywords must list at least one word")
        themes.append(ThemeConfig(name.strip(), tuple(keywords), description, tuple(exclude)))
    names = [t.name.casefold() for t in themes]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"{source}: theme {dup!r} is configured twice")
    return tuple(themes)
