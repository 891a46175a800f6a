"""Subscribing from the web, with consent (double opt-in).

A request from the /subscribe form stores a *signup*: the address, the areas chosen, the
SHA-256 of a fresh token (``addresses.new_token()``, 256 random bits; the token itself
is only ever in the confirmation e-mail) and a keyed hash of the client's address. The
subscriber becomes active only when the link with the token is opened and confirmed,
before it expires; confirming twice is harmless. An address that unsubscribed comes back
only this way.

Limits against using the form to mail-bomb someone: a pending address is re-sent its
confirmation at most every ``subscribe.resend_minutes``, at most
``subscribe.max_per_address_day`` times a day, and one client address may cause at most
``subscribe.max_per_ip_hour`` confirmation e-mails an hour. Tokens are never logged.

Counting against the limits and recording the request are one atomic step: the request
is a write transaction from its first read (BEGIN IMMEDIATE on SQLite, which waits its
turn instead of failing), and on PostgreSQL it first takes a transaction-scoped advisory
lock, so two concurrent requests can never both see room for one more.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.addresses import new_token
from digest.config import SubscribeSection
from digest.mail.message import TOKEN_RE
from digest.mail.subscribers import normalize, parse_themes, upsert
from digest.state import signups
from digest.state import subscribers as stored
from digest.state.handles import Sessions, Tx, reading, writing
from digest.state.signups import SignupRow

log = logging.getLogger(__name__)

__all__ = ["Confirmation", "Request", "SignupDesk", "token_hash"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Request:
    """What a subscribe request came to. ``token`` is set only when a confirmation
    e-mail is to be sent now (outcome "send")."""

    outcome: str  # "send" | "throttled" (no mail now; the reader is told the same) | "busy"
    address: str
    token: str = ""
    themes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Confirmation:
    state: str  # "confirmed" | "already" | "expired" | "unknown"
    address: str = ""
    subscriber_token: str = ""  # for the welcome message's links; only when confirmed
    themes: tuple[str, ...] = ()


class SignupDesk:
    """Signups over a database: each call is one transaction."""

    def __init__(
        self,
        sessions: Sessions,
        limits: SubscribeSection,
        secret: Callable[[], bytes],
        clock: Callable[[], datetime],
    ) -> None:
        self.sessions = sessions
        self.limits = limits
        self.secret = secret
        self.clock = clock

    def _ip_hash(self, ip: str) -> str:
        key = self.secret()
        return hmac.new(key, b"signup-ip:" + ip.encode(), hashlib.sha256).hexdigest()

    def request(self, raw_address: str, themes: Sequence[str], ip: str) -> Request:
        """Record a request and say whether to send a confirmation now. Raises
        SubscriberError for an address that is not valid."""
        address = normalize(raw_address)
        slugs = parse_themes(themes)
        key, now, ip_hash = address.lower(), self.clock(), self._ip_hash(ip)
        hour, day = now - timedelta(hours=1), now - timedelta(days=1)
        with writing(self.sessions) as s:
            signups.serialize(s)
            if signups.count_from(s, ip_hash, hour) >= self.limits.max_per_ip_hour:
                log.warning("subscribe: a client reached max_per_ip_hour; request refused")
                return Request("busy", address)
            recent = signups.recent(s, key, day)
            resend_after = now - timedelta(minutes=self.limits.resend_minutes)
            pending_recently = any(c is None and t > resend_after for t, c in recent)
            if pending_recently or len(recent) >= self.limits.max_per_address_day:
                log.info("subscribe: confirmation for a pending address not re-sent yet")
                return Request("throttled", address, themes=slugs)
            token = new_token()
            expires = now + timedelta(hours=self.limits.confirm_hours)
            signups.add(s, address, slugs, token_hash(token), ip_hash, now, expires)
        log.info("subscribe: confirmation requested (%d area(s))", len(slugs))
        return Request("send", address, token, slugs)

    def forget(self, token: str) -> None:
        """Drop the signup of a confirmation that could not be sent."""
        with writing(self.sessions) as s:  # reads then deletes: the write lock first
            signup = self._find(s, token)
            if signup is not None and signup.confirmed_at is None:
                signups.remove(s, signup.id)

    def peek(self, token: str) -> Confirmation:
        """What opening this confirmation link would do, changing nothing."""
        with reading(self.sessions) as s:
            signup = self._find(s, token)
            if signup is None:
                return Confirmation("unknown")
            return Confirmation(self._state(signup), signup.address, themes=signup.themes)

    def confirm(self, token: str) -> Confirmation:
        """Activate the subscriber of a valid, unexpired token (idempotent)."""
        with writing(self.sessions) as s:  # reads then writes: the write lock first
            signup = self._find(s, token)
            if signup is None:
                return Confirmation("unknown")
            state = self._state(signup)
            if state != "pending":
                return Confirmation(state, signup.address, themes=signup.themes)
            signups.confirm(s, signup, self.clock())
            upsert(s, signup.address, themes=signup.themes, status="active", reactivate=True)
            sub = stored.by_key(s, signup.key)
            assert sub is not None
            if sub.bounce_count:
                stored.change(s, [(sub.id, {"bounce_count": 0})])
        log.info("subscribe: subscriber #%d confirmed", sub.id)
        return Confirmation("confirmed", sub.address, sub.token, sub.themes)

    def _find(self, s: Tx, token: str) -> SignupRow | None:
        if not TOKEN_RE.fullmatch(token or ""):
            return None
        digest = token_hash(token)
        signup = signups.by_token_hash(s, digest)
        if signup is None or not hmac.compare_digest(signup.token_hash, digest):
            return None
        return signup

    def _state(self, signup: SignupRow) -> str:
        if signup.confirmed_at is not None:
            return "already"
        if signup.expires_at <= self.clock():
            return "expired"
        return "pending"
