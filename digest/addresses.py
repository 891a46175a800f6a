"""Addresses, display names and tokens: the one place that says what is acceptable,
shared by the settings (`digest.config`) and the subscriber list (`digest.mail`).

The rule for an address is email-validator's, without a DNS look-up and without
SMTPUTF8. May import: `digest.errors`.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError

MAX_NAME = 200
# A subscriber's unsubscribe token or a signup token (secrets.token_urlsafe(32) makes 43
# characters); anything else never reaches a query.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_token() -> str:
    """An unguessable token for a link (256 random bits, URL-safe, 43 characters), never
    beginning with "-": pasted after `digest unsubscribe`, it would be read as an option."""
    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_DOMAINS: dict[str, str] = {}  # a plain domain as email-validator normalised it


class AddressError(DigestError):
    """An address or a display name is not acceptable."""


def address_problem(address: str, *, local_ok: bool = False) -> str | None:
    """Why `address` (a bare address) is not valid, or None. `local_ok` also accepts
    `user@localhost` (the default sender of the Maildir set-up)."""
    local, at, domain = address.rpartition("@")
    if local_ok and at and domain.lower() == "localhost":
        address = f"{local}@localhost.example"  # checks the local part the same way
    try:
        validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        return f"is not a valid address: {exc}"
    return None


def mailbox_problem(value: str) -> str | None:
    """Why `value` is not `Name <user@host>` or `user@host` on one line, or None."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must be one line without control characters"
    address = value.strip()
    if "<" in value or ">" in value:
        address = parseaddr(value)[1]
        if not address or ("<" in value) != (">" in value):
            return 'is not an address (e.g. "Papers digest <digest@example.org>")'
    return address_problem(address, local_ok=True)


def normalize(raw: str) -> str:
    """The address validated and normalised (domain lower-cased, spaces stripped).
    A plain ASCII address (dot-atom local part) has only its domain checked by
    email-validator, once per domain: what it would say of the whole address."""
    text = raw.strip()
    if not text:
        raise AddressError("empty address")
    plain = _PLAIN.fullmatch(text)
    if plain and len(plain[1]) <= 64 and len(text) <= 254:
        domain = _DOMAINS.get(plain[2])
        if domain is None:
            try:
                checked = validate_email(
                    "x@" + plain[2], check_deliverability=False, allow_smtputf8=False
                )
            except EmailNotValidError:
                checked = None
            if checked is not None and len(_DOMAINS) < 100_000:
                domain = _DOMAINS[plain[2]] = checked.ascii_domain or checked.domain
        if domain is not None:
            return f"{plain[1]}@{domain}"
    try:
        info = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{text!r} is not a valid address: {exc}") from None
    return info.ascii_email or info.normalized


def check_name(raw: str) -> str:
    """A display name as it may go into a To header (encoded there): one line, no
    control characters, at most MAX_NAME characters; surrounding spaces stripped."""
    name = raw.strip()
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in name):
        raise AddressError(
            f"name {name!r} contains a line break or control character; "
            "give the name on one line, as plain text"
        )
    if len(name) > MAX_NAME:
        raise AddressError(f"name longer than {MAX_NAME} characters")
    return name
