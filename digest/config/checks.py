"""Settings checks: the format and range rules a setting's value must meet. Each rule is
run once, when the settings are loaded; nothing downstream checks a setting again.

A check takes a value and returns what is wrong with it ("is not ...") or None.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import reprlib
import string
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

# apscheduler, tzlocal and email-validator are imported by the checks that use them, so
# that importing the settings (every command, `--help` too) stays light.

Check = Callable[[Any], str | None]  # a problem ("is not ...") or None when the value is fine

# Every number has a ceiling, so no value that passes the checks overflows a date or a
# timer later (1e300 hours did): the declared `high`, else one by the unit its name ends
# with (ten years), else a billion.
_TEN_YEARS = {"_seconds": 315_360_000, "_minutes": 5_256_000, "_hours": 87_600, "_days": 3_650}
_CEILING = 1_000_000_000


def _shown(value: Any) -> str:
    """A value in an error message: its repr, cut short (one line, whatever its size)."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 6


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


def schedule_zone(name: str) -> Any:
    """The IANA zone `name`, or the machine's zone for "" (ConfigError if unknown)."""
    if not name:
        from tzlocal import get_localzone

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
    from apscheduler.triggers.cron import CronTrigger

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


def address_problem(value: str, *, local_ok: bool = False) -> str | None:
    """What is wrong with a bare address (the rule of `digest.addresses`), or None."""
    from digest.addresses import address_problem as problem

    return problem(value, local_ok=local_ok)


def _mailbox(value: str) -> str | None:
    """`Name <user@host>` or `user@host`, on one line (the rule of `digest.addresses`)."""
    from digest.addresses import mailbox_problem

    return mailbox_problem(value)


def _optional_address(value: str) -> str | None:
    return _mailbox(value) if value else None


def _addresses(values: list[str]) -> str | None:
    """Bare addresses, as the subscriber list takes them."""
    for value in values:
        problem = address_problem(value.strip())
        if problem:
            return f"has {value!r}, which {problem}"
    return None


def _no_controls(value: str) -> str | None:
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
    # The shape SQLAlchemy parses (dialect[+driver]://rest), checked with the stdlib so
    # that loading the settings does not import SQLAlchemy; state.db.make_engine turns
    # anything it still refuses into a ConfigError naming this setting.
    if not _URL_SHAPE.fullmatch(value) or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return 'is not a valid SQLAlchemy URL (e.g. "postgresql+psycopg://digest@db/digest")'
    try:
        urlsplit(value).port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "has a port that is not a number"
    return None


_URL_SHAPE = re.compile(r"[A-Za-z][\w+]*://.*", re.DOTALL)


def _template_set(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value) or ".." in value:
        return "is not a template set name: use a folder name under templates/"
    return None


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
