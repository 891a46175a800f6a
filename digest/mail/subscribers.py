"""The subscriber list's rules, in the caller's transaction: add, update, unsubscribe,
who receives (the CSV file: csvfile.py; the use cases: digest.app.subscribing).

Addresses are validated with email-validator (no DNS look-up) and folded: the domain's
case, surrounding spaces and the case of the whole address do not make a second
subscriber (the first spelling is kept). Unsubscribing is sticky: only an explicit
``add --resubscribe`` brings someone back; imports and configured recipients never do.
"""

from __future__ import annotations

import difflib
import hmac
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from digest import addresses
from digest.errors import DigestError
from digest.mail.message import TOKEN_RE
from digest.state import outbox
from digest.state import subscribers as stored
from digest.state.handles import Tx
from digest.state.states import UNSUBSCRIBED_ERROR, SubscriberStatus
from digest.state.subscribers import NewSubscriber, SubscriberRow
from digest.urls import slugify

log = logging.getLogger(__name__)

STATUSES = tuple(s.value for s in SubscriberStatus)  # plain strings (click shows them)
CSV_FIELDS = ("email", "name", "themes", "status", "watch", "mute")
MAX_NAME = addresses.MAX_NAME


class SubscriberError(DigestError):
    """An address, a theme list, a status or a CSV file is not acceptable."""


@dataclass(frozen=True)
class SubscriberInfo:
    """A subscriber as the CLI and the web server see it (no token)."""

    address: str
    name: str
    status: str
    themes: tuple[str, ...]
    bounce_count: int
    created_at: datetime
    watch: str = ""  # phrases watched, ";"-separated
    mute: str = ""


@dataclass(frozen=True)
class Unsubscribed:
    address: str
    already: bool  # was unsubscribed before this call


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, problem)
    notes: list[tuple[int, str]] = field(default_factory=list)  # (line, remark)


def normalize(raw: str) -> str:
    """The address validated and normalised (the rule of `digest.addresses`)."""
    try:
        return addresses.normalize(raw)
    except addresses.AddressError as exc:
        raise SubscriberError(exc.message) from None


def check_name(raw: str) -> str:
    """A subscriber's name as it may go into a To header (`digest.addresses`)."""
    try:
        return addresses.check_name(raw)
    except addresses.AddressError as exc:
        raise SubscriberError(exc.message) from None


def parse_themes(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Theme names or slugs (";"-separated in a string) as slugs; () means every theme."""
    parts = raw.split(";") if isinstance(raw, str) else raw
    slugs = [slugify(p) for p in (p.strip() for p in parts) if p]
    return tuple(dict.fromkeys(slugs))


Choices = Sequence[tuple[str, str]]  # (slug, name) of every theme a subscriber may choose


def resolve_themes(
    raw: str | Iterable[str], choices: Choices, aliases: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """Topic names or slugs (";"-separated in a string) as the slugs of ``choices``, an
    old slug (``aliases``: old slug -> slug) as the slug that replaced it; an unknown one
    is refused with the closest known name. () means every topic."""
    by_key: dict[str, str] = {}
    for slug, name in choices:
        by_key.setdefault(slug, slug)
        by_key.setdefault(name.casefold(), slug)
        by_key.setdefault(slugify(name), slug)
    for old, slug in (aliases or {}).items():
        by_key.setdefault(old, slug)
    parts = raw.split(";") if isinstance(raw, str) else raw
    slugs = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        found = by_key.get(part.casefold()) or by_key.get(slugify(part))
        if found is None:
            close = closest_topic(part, choices)
            hint = f"; did you mean {close!r}?" if close else ""
            raise SubscriberError(f"unknown topic {part!r}{hint} (see `digest areas`)")
        slugs.append(found)
    return tuple(dict.fromkeys(slugs))


def closest_topic(typed: str, choices: Choices) -> str | None:
    """The name of the topic ``typed`` most likely meant: the shortest whose words begin
    with each word typed, in order ("music gen" -> "Music generation and understanding"),
    else the closest spelling of a name or slug ("musik"), else None."""
    words = [w for w in slugify(typed).split("-") if w]
    begun = [n for _, n in choices if _begins_each(slugify(n).split("-"), words)]
    if begun:
        return min(begun, key=len)
    names = {n.casefold(): n for _, n in choices} | {s: n for s, n in choices}
    close = difflib.get_close_matches(typed.casefold(), list(names), 1, 0.5)
    return names[close[0]] if close else None


def _begins_each(name: list[str], typed: list[str]) -> bool:
    """Whether the words ``typed`` begin words of ``name``, in that order."""
    rest = iter(name)
    return bool(typed) and all(any(w.startswith(t) for w in rest) for t in typed)


def check_status(status: str) -> str:
    status = status.strip().lower()
    if status not in STATUSES:
        raise SubscriberError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return status


def info_of(s: SubscriberRow) -> SubscriberInfo:
    return SubscriberInfo(
        s.address, s.name, s.status, s.themes, s.bounce_count, s.created_at, s.watch, s.mute
    )


def new_subscriber(
    address: str, name: str = "", themes: Sequence[str] = (), status: str | None = None
) -> NewSubscriber:
    status = status or SubscriberStatus.ACTIVE
    return NewSubscriber(address, addresses.new_token(), name, tuple(themes), status)


def changes_of(
    sub: SubscriberRow,
    name: str | None,
    themes: Sequence[str] | None,
    status: str | None,
    *,
    reactivate: bool,
) -> tuple[str, dict[str, object]]:
    """How an existing subscriber changes: "updated", "unchanged" or "kept", and the
    columns to set."""
    changes: dict[str, object] = {}
    if name is not None and name != sub.name:
        changes["name"] = name
    if themes is not None and tuple(themes) != sub.themes:
        changes["themes"] = list(themes)
    if (
        status == SubscriberStatus.ACTIVE
        and sub.status == SubscriberStatus.UNSUBSCRIBED
        and not reactivate
    ):
        return "kept", changes
    if status is not None and status != sub.status:
        changes["status"] = status
        changes["unsubscribed_at"] = (
            datetime.now(UTC) if status == SubscriberStatus.UNSUBSCRIBED else None
        )
        if status == SubscriberStatus.ACTIVE:
            changes["bounce_count"] = 0
    return ("updated" if changes else "unchanged"), changes


def upsert(
    tx: Tx,
    address: str,
    *,
    name: str | None = None,
    themes: Sequence[str] | None = None,
    status: str | None = None,
    reactivate: bool = False,
) -> str:
    """Add or update one subscriber. Returns "added", "updated", "unchanged" or "kept"
    (unsubscribed, not reactivated)."""
    if name is not None:
        name = check_name(name)
    sub = stored.by_key(tx, address.lower())
    if sub is None:
        stored.add(tx, [new_subscriber(address, name or "", themes or (), status)])
        return "added"
    outcome, changes = changes_of(sub, name, themes, status, reactivate=reactivate)
    stored.change(tx, [(sub.id, changes)])
    return outcome


def sync_configured(tx: Tx, addresses: Iterable[str]) -> int:
    """Configured recipients become active subscribers when new; existing ones (even
    unsubscribed or bounced) are left as they are. Returns how many were added."""
    keys = {a.lower(): a for a in addresses}
    if not keys:
        return 0
    known = stored.known_keys(tx, list(keys))
    fresh = [new_subscriber(a) for k, a in keys.items() if k not in known]
    stored.add(tx, fresh)
    return len(fresh)


def receiving(tx: Tx, configured: Sequence[str], shown: int = 5) -> tuple[int, list[str]]:
    """How many would receive the next digest, and the first `shown` of them, as
    would_receive orders them, without reading the whole list."""
    keys = [a.lower() for a in configured]
    status = stored.statuses(tx, keys)
    first = [a for a in configured if status.get(a.lower(), "active") == "active"]
    count, rest = stored.other_active(tx, keys, shown)
    return len(first) + count, [*first[:shown], *rest][:shown]


def would_receive(tx: Tx, configured: Sequence[str]) -> list[str]:
    """The configured addresses not unsubscribed or bounced, then the other active
    subscribers: who the next digest goes to (before theme choices)."""
    status = stored.statuses(tx)
    on = SubscriberStatus.ACTIVE
    out = [a for a in configured if status.get(a.lower(), on) == on]
    seen = {a.lower() for a in out}
    out += [a for _, a, _ in stored.active(tx) if a.lower() not in seen]
    return out


def unsubscribe(tx: Tx, token: str) -> Unsubscribed | None:
    """Unsubscribe the owner of ``token`` at once; idempotent. None for an unknown token.
    Pending deliveries to them are skipped. The token is never logged."""
    sub = by_token(tx, token)
    if sub is None:
        return None
    if sub.status == SubscriberStatus.UNSUBSCRIBED:
        return Unsubscribed(sub.address, already=True)
    left = {"status": SubscriberStatus.UNSUBSCRIBED, "unsubscribed_at": datetime.now(UTC)}
    stored.change(tx, [(sub.id, left)])
    outbox.skip_pending(tx, sub.id, UNSUBSCRIBED_ERROR)
    log.info("unsubscribed subscriber #%d", sub.id)
    return Unsubscribed(sub.address, already=False)


# --------------------------------------------------------------------------- by token


def by_token(tx: Tx, token: str) -> SubscriberRow | None:
    """The subscriber owning ``token`` (compared in constant time), or None."""
    if not TOKEN_RE.fullmatch(token or ""):
        return None
    sub = stored.by_token(tx, token)
    if sub is None or not hmac.compare_digest(sub.token.encode(), token.encode()):
        return None
    return sub


def choose_themes(tx: Tx, token: str, themes: Sequence[str]) -> SubscriberInfo | None:
    """Set the themes the owner of ``token`` receives (() = every theme)."""
    sub = by_token(tx, token)
    if sub is None:
        return None
    chosen = parse_themes(themes)
    stored.change(tx, [(sub.id, {"themes": list(chosen)})])
    log.info("subscriber #%d chose %d theme(s)", sub.id, len(chosen))
    return info_of(replace(sub, themes=chosen))
