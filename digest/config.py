"""Settings: declared once (name, type, default, help), loaded from `digest.toml`,
overridden by `DIGEST_<SECTION>_<KEY>` environment variables, validated at start-up.

`digest init` writes the commented default file from these same declarations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from digest.errors import ConfigError

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG_NAME = "digest.toml"


def setting(default: Any, help: str, *, key: str = "", choices: tuple[str, ...] = ()) -> Any:
    """A declared setting: its default, one line of help, optional TOML key and choices."""
    meta = {"help": help, "key": key, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DigestSection:
    title: str = setting("Papers digest", "Title of the newsletter, its feeds and web pages.")
    base_url: str = setting(
        "http://localhost:8000", "Public URL where state/public is served; used in every link."
    )
    dumps_dir: str = setting("dumps", "Folder where dump files are dropped.")
    state_dir: str = setting("state", "Folder for the database, public/ and outbox/.")
    database_url: str = setting("", "SQLAlchemy URL; empty: SQLite at <state_dir>/digest.db.")
    theme: str = setting("default", "Visual theme: a folder under templates/.")
    templates_dir: str = setting("", "Your own templates, searched before the theme, file by file.")
    min_papers: int = setting(1, "Publish only when at least this many papers are pending.")
    feed_size: int = setting(20, "How many recent issues the feeds carry.")
    abstract_chars: int = setting(
        320, "Abstracts in the e-mail are shortened to about this length."
    )
    max_papers_per_digest: int = setting(
        2000,
        "At most this many papers in one issue: the oldest pending go first, the rest "
        "wait for the next issue.",
    )
    max_dump_bytes: int = setting(
        20_000_000, "A dump file larger than this many bytes is refused with the reason, unread."
    )


@dataclass(frozen=True)
class EmailSection:
    transport: str = setting(
        "maildir",
        "How mail leaves: a Maildir outbox or an SMTP server.",
        choices=("maildir", "smtp"),
    )
    sender: str = setting("Papers digest <digest@localhost>", "The From address.", key="from")
    recipients: list[str] = setting([], "Addresses that receive each digest.")
    list_id: str = setting("", "List-Id header; empty: derived from the title and From domain.")
    outbox_dir: str = setting("", "Maildir for transport = maildir; empty: <state_dir>/outbox.")
    smtp_host: str = setting("localhost", "SMTP server host.")
    smtp_port: int = setting(25, "SMTP server port.")
    smtp_security: str = setting("none", "Transport security.", choices=("none", "starttls", "ssl"))
    smtp_user: str = setting(
        "", "SMTP login; the password comes from $DIGEST_EMAIL_SMTP_PASSWORD, never this file."
    )
    smtp_timeout: float = setting(30.0, "Seconds to wait for the SMTP server.")
    connections: int = setting(
        4, "SMTP connections used in parallel, each reused for many messages."
    )
    rate_limit: float = setting(0.0, "At most this many messages per second in all; 0: no limit.")
    max_attempts: int = setting(
        4, "Tries per message in one run on a temporary failure (4xx, lost connection, timeout)."
    )
    retry_seconds: float = setting(
        1.0, "Wait before retrying a temporary failure; doubles with each attempt."
    )
    give_up_hours: float = setting(
        72.0, "A message still failing temporarily this long after publishing is marked failed."
    )
    bounce_threshold: int = setting(
        3, "Permanent failures (5xx) in a row after which a subscriber is marked bounced."
    )
    unsubscribe_mailto: str = setting(
        "", "Address for List-Unsubscribe requests by mail; empty: the From address."
    )
    max_html_bytes: int = setting(
        100_000, "Keep the HTML part under this size (Gmail clips at about 102 KB)."
    )
    dkim_key_file: str = setting(
        "", "PEM private key for DKIM signing; empty: no signing. The key never goes here."
    )
    dkim_selector: str = setting("digest", "DKIM selector (the DNS record <selector>._domainkey).")
    dkim_domain: str = setting("", "DKIM signing domain; empty: the domain of the From address.")


@dataclass(frozen=True)
class ScheduleSection:
    mode: str = setting("cron", "When `digest run` publishes.", choices=("cron", "on_new_dump"))
    cron: str = setting("0 8 * * *", "Crontab expression for mode = cron.")
    timezone: str = setting("", "IANA zone for the schedule; empty: the machine's zone.")
    poll_seconds: float = setting(5.0, "How often `digest run` checks the dumps folder.")
    settle_seconds: float = setting(
        2.0, "A new file is read once its size and mtime stayed unchanged this long."
    )
    debounce_seconds: float = setting(
        10.0, "mode = on_new_dump: wait this long after the last new dump before publishing."
    )
    grace_seconds: float = setting(
        3600.0, "A scheduled run missed while the daemon was down still fires if this recent."
    )
    stale_days: float = setting(
        3.0, "Warn (once) when no new dump has arrived for this many days; 0 turns it off."
    )
    retry_minutes: float = setting(
        5.0, "How often `digest run` retries deliveries deferred by a temporary failure."
    )
    admin_email: str = setting("", "Who is mailed about a stale source; empty: log only.")
    log_file: str = setting("", "Also append the daemon's log to this file.")


@dataclass(frozen=True)
class WebSection:
    host: str = setting("127.0.0.1", "Address `digest serve` listens on.")
    port: int = setting(8000, "Port `digest serve` listens on.")


@dataclass(frozen=True)
class ThemeConfig:
    name: str
    keywords: tuple[str, ...]
    description: str = ""
    exclude: tuple[str, ...] = ()


SECTIONS: dict[str, type] = {
    "digest": DigestSection,
    "email": EmailSection,
    "schedule": ScheduleSection,
    "web": WebSection,
}


@dataclass(frozen=True)
class Settings:
    digest: DigestSection = field(default_factory=DigestSection)
    email: EmailSection = field(default_factory=EmailSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    web: WebSection = field(default_factory=WebSection)
    themes: tuple[ThemeConfig, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)  # relative paths resolve against it
    source: str = "defaults"  # the file the settings came from, for messages

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def dumps_dir(self) -> Path:
        return self.path(self.digest.dumps_dir)

    @property
    def state_dir(self) -> Path:
        return self.path(self.digest.state_dir)

    @property
    def public_dir(self) -> Path:
        return self.state_dir / "public"

    @property
    def outbox_dir(self) -> Path:
        return (
            self.path(self.email.outbox_dir) if self.email.outbox_dir else self.state_dir / "outbox"
        )

    @property
    def database_url(self) -> str:
        if self.digest.database_url:
            return self.digest.database_url
        return f"sqlite:///{self.state_dir / 'digest.db'}"

    @property
    def templates_dir(self) -> Path | None:
        return self.path(self.digest.templates_dir) if self.digest.templates_dir else None

    @property
    def base_url(self) -> str:
        return self.digest.base_url.rstrip("/")

    @property
    def smtp_password(self) -> str:
        return os.environ.get("DIGEST_EMAIL_SMTP_PASSWORD", "")


def toml_key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("key") or f.name)


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
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    source = str(path) if path else "defaults"
    unknown = set(data) - set(SECTIONS) - {"themes"}
    if unknown:
        raise ConfigError(
            f"{source}: unknown section [{sorted(unknown)[0]}]",
            hint=f"known sections: {', '.join([*SECTIONS, 'themes'])}",
        )
    sections = {
        name: _load_section(name, cls, data.get(name, {}), environ, source)
        for name, cls in SECTIONS.items()
    }
    themes = _load_themes(data.get("themes", []), source)
    base_dir = path.resolve().parent if path else Path.cwd()
    return Settings(**sections, themes=themes, base_dir=base_dir, source=source)


def _load_section(name: str, cls: type, table: Any, environ: dict[str, str], source: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    fields = {toml_key(f): f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(fields)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{source}: unknown setting {name}.{key}",
            hint=f"known keys of [{name}]: {', '.join(fields)}",
        )
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, f in fields.items():
        env_name = f"DIGEST_{name}_{key}".upper()
        if env_name in environ:
            raw: Any = environ[env_name]
            values[f.name] = _coerce(raw, hints[f.name], f"${env_name}", from_env=True)
        elif key in table:
            values[f.name] = _coerce(table[key], hints[f.name], f"{source}: {name}.{key}")
        else:
            continue
        _check_choice(f, values[f.name], f"{name}.{key}", source)
    return cls(**values)


def _check_choice(f: dataclasses.Field[Any], value: Any, where: str, source: str) -> None:
    choices = f.metadata.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(
            f"{source}: {where} = {value!r} is not one of {', '.join(choices)}",
        )


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
            return float(value)
    elif typ == list[str]:
        if from_env:
            value = _env_list(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    expected = _type_name(typ)
    raise ConfigError(f"{where}: expected {expected}, got {value!r}")


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


def default_toml() -> str:
    """The commented `digest.toml` that `digest init` writes: every setting and its default."""
    lines = [
        "# digest configuration. Every key can be overridden by an environment variable",
        "# DIGEST_<SECTION>_<KEY>, e.g. DIGEST_EMAIL_SMTP_HOST. Relative paths are",
        "# relative to this file. Secrets never go here: the SMTP password is read",
        "# from $DIGEST_EMAIL_SMTP_PASSWORD.",
    ]
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        for f in dataclasses.fields(cls):
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            lines.append(f"# {f.metadata['help']}")
            choices = f.metadata.get("choices")
            if choices:
                lines.append(f"# One of: {', '.join(choices)}.")
            lines.append(f"{toml_key(f)} = {_toml_value(default)}")
    lines += [
        "",
        "# Themes: each paper goes to the configured theme whose keywords it matches best;",
        "# the rest go to a remaining section. Repeat [[themes]] for each theme.",
        "# [[themes]]",
        '# name = "Mixture of experts"',
        '# keywords = ["mixture of experts", "moe", "router", "experts"]',
        '# description = "Sparse expert models and routing"',
        "# exclude = []",
        "",
    ]
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def iter_settings() -> list[tuple[str, str, str]]:
    """(section, key, help) for every declared setting: used by the docs test."""
    return [
        (name, toml_key(f), str(f.metadata.get("help", "")))
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]
