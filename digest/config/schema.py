"""Settings schema: every setting declared once (name, type, default, one line of help,
its rule), grouped in one frozen dataclass per TOML section, and `Settings`, their sum."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from digest.config.checks import (
    Check,
    _addresses,
    _cron,
    _database_url,
    _host,
    _http_url,
    _mailbox,
    _networks,
    _no_controls,
    _optional_address,
    _optional_host,
    _template_set,
    _zone,
    subject_template_problem,
)

CONFIG_ENV = "DIGEST_CONFIG"
DEFAULT_CONFIG_NAME = "digest.toml"
PASSWORD_ENV = "DIGEST_EMAIL_SMTP_PASSWORD"
IMAP_PASSWORD_ENV = "DIGEST_IMAP_PASSWORD"  # `digest bounces --imap`: the mailbox's password
# DIGEST_* variables that are not settings but that digest reads. Any other DIGEST_*
# variable is refused as a likely misspelt setting, except those under TOOLING_PREFIX.
OTHER_ENV = frozenset(
    {
        CONFIG_ENV,  # which settings file
        PASSWORD_ENV,  # the SMTP password (never in the file)
        IMAP_PASSWORD_ENV,  # the password of `digest bounces --imap` (never in the file)
    }
)
# Variables of the test suite, its scripts and benchmarks (DIGEST_TEST_DATABASE_URL, ...):
# digest never reads them, and ignores them instead of refusing them.
TOOLING_PREFIX = "DIGEST_TEST_"
T = TypeVar("T")


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
    old: str = "",
) -> T:
    """A declared setting: its default (typed: mypy checks it against the annotation), one
    line of help, optional TOML key, and what a valid value is: one of `choices`, at least
    `low`, at most `high`, more than `above`, or whatever `check` accepts. `old` is an
    old spelling of the key that is still read (in the file and the environment)."""
    meta = {
        "help": help,
        "key": key,
        "choices": choices,
        "low": low,
        "high": high,
        "above": above,
        "check": check,
        "old": old,  # an old spelling of the key, still accepted
    }
    if isinstance(default, list):
        items = list(default)
        return cast(T, field(default_factory=lambda: list(items), metadata=meta))
    return cast(T, field(default=default, metadata=meta))


@dataclass(frozen=True)
class DigestSection:
    title: str = setting(
        "Papers digest", "Title of the newsletter, its feeds and web pages.", check=_no_controls
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
    template_set: str = setting(
        "default",
        "Template set (the look of the e-mail and web pages): a folder under templates/; "
        "old spelling: theme.",
        check=_template_set,
        old="theme",
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

    @property
    def theme(self) -> str:
        """The old name of `template_set`."""
        return self.template_set


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
        "", "List-Id header; empty: derived from the title and From domain.", check=_no_controls
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
    for_you_max: int = setting(
        5,
        'Papers at most in the "For you" block that opens a reader\'s e-mail (their '
        "watched papers, then their feedback picks); 0: no block.",
        low=0,
        high=50,
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
    max_feedback_per_hour: int = setting(
        60,
        '"More / less like this" marks one subscriber may make in an hour, at most.',
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


def old_key(f: dataclasses.Field[Any]) -> str:
    """The old spelling of a setting's key that is still read, or ""."""
    return str(f.metadata.get("old") or "")


def iter_settings() -> list[tuple[str, str, str]]:
    """(section, key, help) for every declared setting: used by the docs test."""
    return [
        (name, toml_key(f), str(f.metadata.get("help", "")))
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    ]
