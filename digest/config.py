"""Settings: declared once (name, type, default, help), loaded from `digest.toml`,
overridden by `DIGEST_<SECTION>_<KEY>` environment variables, validated at start-up.

`digest init` writes the commented default file from these same declarations.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import os
import re
import reprlib
import string
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar, cast, get_type_hints
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from tzlocal import get_localzone

from digest.errors import ConfigError

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG_NAME = "digest.toml"
PASSWORD_ENV = "DIGEST_EMAIL_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "DIGEST_IMAP_PASSWORD"  # `digest bounces --imap`: the mailbox's password
# DIGEST_* variables that are not settings but that digest, its tests or its scripts read.
# Any other DIGEST_* variable is refused as a likely misspelt setting.
OTHER_ENV = frozenset(
    {
        CONFIG_ENV,  # which settings file
        PASSWORD_ENV,  # the SMTP password (never in the file)
        IMAP_PASSWORD_ENV,  # the password of `digest bounces --imap` (never in the file)
        "DIGEST_TEST_DATABASE_URL",  # tests: the PostgreSQL server
        "DIGEST_TEST_POSTFIX",  # tests: the private Postfix ("host:port maildir")
        "DIGEST_POSTFIX_PORT",  # .ci/postfix.sh: its port
        "DIGEST_POSTFIX_DIR",  # .ci/postfix.sh: its folder
        "DIGEST_TEST_ARTIFACTS",  # tests: where browser screenshots go
        "DIGEST_CRASH_KILLS",  # tests: how many kills the crash loop makes
        "DIGEST_BENCH_SUBSCRIBERS",  # benchmarks: list size
    }
)

T = TypeVar("T")
Check = Callable[[Any], str | None]  # a problem ("is not ...") or None when the value is fine

# Every number has a ceiling, so no value that passes the checks overflows a date or a
# timer later (1e300 hours did): the declared `high`, else one by the unit its name ends
# with (ten years), else a billion.
_TEN_YEARS = {"_seconds": 315_360_000, "_minutes": 5_256_000, "_hours": 87_600, "_days": 3_650}
_CEILING = 1_000_000_000
MAX_TOML_DEPTH = 20  # tables and arrays inside each other; settings need three or four


def _shown(value: Any) -> str:
    """A value in an error message: its repr, cut short (one line, whatever its size)."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 6


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


SUBJECT_FIELDS = ("issue", "count", "papers", "sections", "title")


def subject_template_problem(template: str) -> str:
    """What is wrong with an ``email.subject`` template, or "" when it is usable."""
    if not template.strip():
        return "must not be empty"
    if any(ch in template for ch in "\r\n"):
        return "must be one line"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"is not a valid template ({exc}); write {{{{ and }}}} for a literal brace"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in SUBJECT_FIELDS:
            return f"uses {{{name}}}; known fields: " + ", ".join(
                f"{{{f}}}" for f in SUBJECT_FIELDS
            )
        if spec or conversion:
            return f"uses a format spec in {{{name}}}; write the field alone"
    return ""


def setting(
    default: T,
    help: str,
    *,
    key: str = "",
    choices: tuple[str, ...] = (),
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    check: Check | None = None,
) -> T:
    """A declared setting: its default (typed: mypy checks it against the annotation), one
    line of help, optional TOML key, and what a valid value is: one of `choices`, at least
    `low`, at most `high`, more than `above`, or whatever `check` accepts."""
    meta = {
        "help": help,
        "key": key,
        "choices": choices,
        "low": low,
        "high": high,
        "above": above,
        "check": check,
    }
    if isinstance(default, list):
        items = list(default)
        return cast(T, field(default_factory=lambda: list(items), metadata=meta))
    return cast(T, field(default=default, metadata=meta))


# ----------------------------------------------------------------------------- formats


def schedule_zone(name: str) -> Any:
    """The IANA zone `name`, or the machine's zone for "" (ConfigError if unknown)."""
    if not name:
        return get_localzone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"schedule.timezone = {name!r} is not a known IANA zone") from None


def cron_trigger(expr: str, zone: Any) -> CronTrigger:
    """5 fields (minute hour day month weekday), or 6 with seconds first."""
    try:
        return _make_cron(expr, zone)
    except ValueError as exc:
        raise ConfigError(f"schedule.cron = {expr!r}: {exc}") from None


def _make_cron(expr: str, zone: Any) -> CronTrigger:
    parts = expr.split()
    if len(parts) == 5:
        return CronTrigger.from_crontab(expr, timezone=zone)
    if len(parts) == 6:
        sec, minute, hour, day, month, dow = parts
        return CronTrigger(
            second=sec, minute=minute, hour=hour, day=day, month=month,
            day_of_week=dow, timezone=zone,
        )  # fmt: skip
    raise ValueError('expected 5 fields (or 6 with seconds first), e.g. "0 8 * * *" for 08:00')


def _cron(value: str) -> str | None:
    try:
        _make_cron(value, ZoneInfo("UTC"))
    except ValueError as exc:
        return f"is not a cron expression: {exc}"
    return None


def _zone(value: str) -> str | None:
    try:
        schedule_zone(value)
    except ConfigError:
        return 'is not a known IANA zone (e.g. "Europe/Paris"; empty: the machine\'s zone)'
    return None


def _http_url(value: str) -> str | None:
    bad = 'is not an absolute http(s) URL (e.g. "https://example.org/digest")'
    if any(c.isspace() or ord(c) < 32 for c in value):
        return bad
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return bad
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return bad
    if parts.query or parts.fragment:
        return "must not carry a query or fragment (the links are built under it)"
    return None


def address_problem(address: str, *, local_ok: bool = False) -> str | None:
    """Why `address` (a bare address) is not valid, or None: the same rule as the
    subscriber list's (email-validator, no DNS look-up). `local_ok` also accepts
    `user@localhost` (the default sender of the Maildir set-up)."""
    local, at, domain = address.rpartition("@")
    if local_ok and at and domain.lower() == "localhost":
        address = f"{local}@localhost.example"  # checks the local part the same way
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return f"is not a valid address: {exc}"
    return None


def _mailbox(value: str) -> str | None:
    """`Name <user@host>` or `user@host`, on one line."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must be one line without control characters"
    address = value.strip()
    if "<" in value or ">" in value:
        address = parseaddr(value)[1]
        if not address or ("<" in value) != (">" in value):
            return 'is not an address (e.g. "Papers digest <digest@example.org>")'
    return address_problem(address, local_ok=True)


def _optional_address(value: str) -> str | None:
    return _mailbox(value) if value else None


def _addresses(values: list[str]) -> str | None:
    """Bare addresses, as the subscriber list takes them."""
    for value in values:
        problem = address_problem(value.strip())
        if problem:
            return f"has {value!r}, which {problem}"
    return None


def _one_line(value: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must be one line without control characters"
    return None


_HOST = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?|\[?[0-9a-fA-F:.]+\]?"
)


def _host(value: str) -> str | None:
    """A host name, DNS label(s) or IP address."""
    if not _HOST.fullmatch(value) or len(value) > 253:
        return 'is not a host name or address (e.g. "mail.example.org")'
    return None


def _optional_host(value: str) -> str | None:
    return _host(value) if value else None


def _networks(values: list[str]) -> str | None:
    """IP addresses or networks (CIDR)."""
    for value in values:
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            return f'has {value!r}, which is not an IP address or network (e.g. "127.0.0.1")'
    return None


def _database_url(value: str) -> str | None:
    if not value:
        return None
    try:
        make_url(value)
    except ArgumentError:
        return 'is not a valid SQLAlchemy URL (e.g. "postgresql+psycopg://digest@db/digest")'
    return None


def _template_set(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value) or ".." in value:
        return "is not a template set name: use a folder name under templates/"
    return None


@dataclass(frozen=True)
class DigestSection:
    title: str = setting(
        "Papers digest", "Title of the newsletter, its feeds and web pages.", check=_one_line
    )
    base_url: str = setting(
        "http://localhost:8000",
        "Public URL where state/public is served; used in every link.",
        check=_http_url,
    )
    dumps_dir: str = setting("dumps", "Folder where dump files are dropped.")
    state_dir: str = setting("state", "Folder for the database, public/ and outbox/.")
    database_url: str = setting(
        "", "SQLAlchemy URL; empty: SQLite at <state_dir>/digest.db.", check=_database_url
    )
    theme: str = setting(
        "default",
        "Template set (the look of the e-mail and web pages): a folder under templates/.",
        check=_template_set,
    )
    templates_dir: str = setting(
        "", "Your own templates, searched before the template set, file by file."
    )
    min_papers: int = setting(1, "Publish only when at least this many papers are pending.", low=1)
    feed_size: int = setting(20, "How many recent issues the feeds carry.", low=1, high=1000)
    abstract_chars: int = setting(
        320, "Abstracts in the e-mail are shortened to about this length.", low=40
    )
    areas_file: str = setting(
        "",
        "TOML file of research areas that extends the bundled ones (or replaces them with "
        "replace = true); empty: the bundled areas only.",
    )
    max_papers_per_digest: int = setting(
        2000,
        "At most this many papers in one issue: the oldest pending go first, the rest "
        "wait for the next issue.",
        low=1,
    )
    max_dump_bytes: int = setting(
        20_000_000,
        "A dump file larger than this many bytes is refused with the reason, unread.",
        low=1,
    )


@dataclass(frozen=True)
class EmailSection:
    transport: str = setting(
        "maildir",
        "How mail leaves: a Maildir outbox or an SMTP server.",
        choices=("maildir", "smtp"),
    )
    sender: str = setting(
        "Papers digest <digest@localhost>", "The From address.", key="from", check=_mailbox
    )
    recipients: list[str] = setting([], "Addresses that receive each digest.", check=_addresses)
    list_id: str = setting(
        "", "List-Id header; empty: derived from the title and From domain.", check=_one_line
    )
    outbox_dir: str = setting("", "Maildir for transport = maildir; empty: <state_dir>/outbox.")
    smtp_host: str = setting("localhost", "SMTP server host.", check=_optional_host)
    smtp_port: int = setting(25, "SMTP server port.", low=1, high=65535)
    smtp_security: str = setting("none", "Transport security.", choices=("none", "starttls", "ssl"))
    smtp_user: str = setting(
        "", "SMTP login; the password comes from $DIGEST_EMAIL_SMTP_PASSWORD, never this file."
    )
    smtp_timeout: float = setting(30.0, "Seconds to wait for the SMTP server.", above=0)
    connections: int = setting(
        4, "SMTP connections used in parallel, each reused for many messages.", low=1, high=100
    )
    rate_limit: float = setting(
        0.0,
        "At most this many messages per second in all, over every delivery worker; 0: no limit.",
        low=0,
    )
    max_attempts: int = setting(
        4,
        "Tries per message in one run on a temporary failure (4xx, lost connection, timeout).",
        low=1,
        high=100,
    )
    retry_seconds: float = setting(
        1.0, "Wait before retrying a temporary failure; doubles with each attempt.", low=0
    )
    give_up_hours: float = setting(
        72.0,
        "A message still failing temporarily this long after publishing is marked failed.",
        above=0,
    )
    bounce_threshold: int = setting(
        3, "Permanent failures (5xx) in a row after which a subscriber is marked bounced.", low=1
    )
    max_run_minutes: float = setting(
        60.0, "A delivery run stops after this long; the rest stays pending. 0: no limit.", low=0
    )
    breaker_failures: int = setting(
        5,
        "Timeouts or lost connections in a row (any connection) that stop a run; 0: never.",
        low=0,
    )
    lease_seconds: float = setting(
        60.0, "A worker's claimed deliveries return to pending this long after it stops.", low=1
    )
    claim_batch: int = setting(50, "Deliveries a worker claims at a time.", low=1)
    unsubscribe_mailto: str = setting(
        "",
        "Address for List-Unsubscribe requests by mail; empty: the From address.",
        check=_optional_address,
    )
    bounce_address: str = setting(
        "",
        "Envelope sender (Return-Path) of digests, tagged per message (VERP: local+ID@domain) "
        "so `digest bounces` knows which message bounced; empty: the From address, untagged.",
        check=_optional_address,
    )
    max_html_bytes: int = setting(
        100_000, "Keep the HTML part under this size (Gmail clips at about 102 KB).", low=10_000
    )
    dkim_key_file: str = setting(
        "", "PEM private key for DKIM signing; empty: no signing. The key never goes here."
    )
    dkim_selector: str = setting(
        "digest", "DKIM selector (the DNS record <selector>._domainkey).", check=_host
    )
    dkim_domain: str = setting(
        "", "DKIM signing domain; empty: the domain of the From address.", check=_optional_host
    )
    subject: str = setting(
        "#{issue} · {papers}: {sections}",
        "Subject of each issue: {issue}, {count}, {papers} ('64 papers'), {sections}, {title}.",
        check=subject_template_problem,
    )
    subject_max: int = setting(
        70,
        "Subjects are kept to this many characters (phones cut longer ones): fewer sections.",
        low=20,
    )


@dataclass(frozen=True)
class ScheduleSection:
    mode: str = setting("cron", "When `digest run` publishes.", choices=("cron", "on_new_dump"))
    cron: str = setting("0 8 * * *", "Crontab expression for mode = cron.", check=_cron)
    timezone: str = setting(
        "", "IANA zone for the schedule; empty: the machine's zone.", check=_zone
    )
    poll_seconds: float = setting(5.0, "How often `digest run` checks the dumps folder.", above=0)
    settle_seconds: float = setting(
        2.0, "A new file is read once its size and mtime stayed unchanged this long.", low=0
    )
    debounce_seconds: float = setting(
        10.0,
        "mode = on_new_dump: wait this long after the last new dump before publishing.",
        low=0,
    )
    grace_seconds: float = setting(
        3600.0,
        "A scheduled run missed while the daemon was down still fires if this recent.",
        low=1,
    )
    stale_days: float = setting(
        3.0, "Warn (once) when no new dump has arrived for this many days; 0 turns it off.", low=0
    )
    retry_minutes: float = setting(
        5.0, "How often `digest run` retries deliveries deferred by a temporary failure.", above=0
    )
    admin_email: str = setting(
        "", "Who is mailed about a stale source; empty: log only.", check=_optional_address
    )
    log_file: str = setting("", "Also append the daemon's log to this file.")


@dataclass(frozen=True)
class WebSection:
    host: str = setting("127.0.0.1", "Address `digest serve` listens on.", check=_host)
    port: int = setting(8000, "Port `digest serve` listens on.", low=1, high=65535)
    trusted_proxies: list[str] = setting(
        [],
        "Reverse proxies (addresses or networks) whose X-Forwarded-For names the client "
        "for the per-address limits; empty: trust none.",
        check=_networks,
    )


@dataclass(frozen=True)
class SubscribeSection:
    confirm_hours: float = setting(
        48.0,
        "A /subscribe confirmation link stops working after this many hours.",
        above=0,
    )
    resend_minutes: float = setting(
        60.0,
        "A repeated request for an address awaiting confirmation re-sends at most this often.",
        above=0,
    )
    max_per_address_day: int = setting(
        3,
        "Confirmation e-mails to one address in 24 hours, at most (stops mail-bombing).",
        above=0,
    )
    max_per_ip_hour: int = setting(
        10,
        "Subscribe requests that send mail from one client address in an hour, at most.",
        above=0,
    )


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
    "subscribe": SubscribeSection,
}


@dataclass(frozen=True)
class Settings:
    digest: DigestSection = field(default_factory=DigestSection)
    email: EmailSection = field(default_factory=EmailSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    web: WebSection = field(default_factory=WebSection)
    subscribe: SubscribeSection = field(default_factory=SubscribeSection)
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
    def areas_file(self) -> Path | None:
        return self.path(self.digest.areas_file) if self.digest.areas_file else None

    @property
    def templates_dir(self) -> Path | None:
        return self.path(self.digest.templates_dir) if self.digest.templates_dir else None

    @property
    def base_url(self) -> str:
        return self.digest.base_url.rstrip("/")

    @property
    def smtp_password(self) -> str:
        return os.environ.get(PASSWORD_ENV, "")


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
    """A DIGEST_* variable that is neither a setting nor one of OTHER_ENV is refused."""
    known = {env_name(name, toml_key(f)) for name, cls in SECTIONS.items() for f in _fields(cls)}
    for var in sorted(environ):
        if var.startswith("DIGEST_") and var not in known and var not in OTHER_ENV:
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
    unknown = set(table) - set(fields)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"{source}: unknown setting {name}.{key}",
            hint=_closest(key, list(fields), f"known keys of [{name}]"),
        )
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, f in fields.items():
        var = env_name(name, key)
        if var in environ:
            where = f"${var}"
            values[f.name] = _coerce(environ[var], hints[f.name], where, from_env=True)
        elif key in table:
            where = f"{source}: {name}.{key}"
            values[f.name] = _coerce(table[key], hints[f.name], where)
        else:
            continue
        _check_value(f, values[f.name], where)
    return cls(**values)


def _check_value(f: dataclasses.Field[Any], value: Any, where: str) -> None:
    """The declared rule of a setting (choices, range, format); ConfigError naming it."""
    meta = f.metadata
    choices = meta.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(f"{where} = {_shown(value)} is not one of {', '.join(choices)}")
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{where} = {value!r} is not a number: expected {_range(low, high, above)}"
        )
    if (
        (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        raise ConfigError(
            f"{where} = {_shown(value)} is out of range: expected {_range(low, high, above)}"
        )
    ceiling = _ceiling(f)
    if ceiling is not None and value > ceiling:
        raise ConfigError(
            f"{where} = {_shown(value)} is out of range: expected at most {_number(ceiling)}"
        )
    check = meta.get("check")
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{where} = {_shown(value)} {problem}")


def _ceiling(f: dataclasses.Field[Any]) -> float | None:
    """The largest value a number setting takes (None for other types)."""
    if f.metadata.get("high") is not None:
        return float(f.metadata["high"]) if f.type == "float" else f.metadata["high"]
    if f.type not in ("int", "float"):
        return None
    unit = next((n for suffix, n in _TEN_YEARS.items() if f.name.endswith(suffix)), _CEILING)
    return float(unit) if f.type == "float" else unit


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) and not x.is_integer() else str(int(x))


def _range(low: float | None, high: float | None, above: float | None) -> str:
    n = _number

    if above is not None:
        return f"more than {n(above)}" + (f" and at most {n(high)}" if high is not None else "")
    if low is not None and high is not None:
        return f"{n(low)} to {n(high)}"
    return f"at least {n(low)}" if low is not None else f"at most {n(high or 0)}"


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
            low, high, above = (f.metadata.get(k) for k in ("low", "high", "above"))
            if low is not None or high is not None or above is not None:
                lines.append(f"# Allowed: {_range(low, high, above)}.")
            lines.append(f"{toml_key(f)} = {_toml_value(default)}")
    lines += [
        "",
        "# Themes: each paper goes to the configured theme whose keywords it matches best;",
        "# the rest go to the research areas they match (`digest areas`), what fits no area",
        '# to named topics, and "More papers" keeps at most a tenth of them. Repeat',
        "# [[themes]] for each theme.",
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
