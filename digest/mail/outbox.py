"""The letters of a digest going into the outbox: which selections the active subscribers
make (each variant is rendered once, by the caller, before its write transaction), and
one delivery row per subscriber (the rows are the state's outbox repository,
state/outbox.py; their claims and leases state/claims.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from digest.mail.message import Letter
from digest.mail.variants import (
    Covers,
    Personaliser,
    Selection,
    exactly,
    only,
    selection,
    variant_key,
)
from digest.render.viewmodel import DigestView
from digest.state import outbox
from digest.state.handles import Tx
from digest.state.states import DeliveryStatus


def selections(
    tx: Tx, view: DigestView, *, with_all: bool, take: Covers = exactly
) -> set[Selection]:
    """The distinct selections of papers the active subscribers make of this digest
    (``take``: what each chosen topic covers)."""
    found = {selection(themes, view, take) for _, themes in outbox.theme_choices(tx)}
    if with_all:
        found.add(None)
    found.discard(())
    return found


class LettersMissing(Exception):
    """Subscribers chose a selection whose letter was not rendered beforehand (they
    signed up or changed their choice meanwhile): render these, outside the write
    transaction, and try again."""

    def __init__(self, selections: set[Selection]) -> None:
        super().__init__(f"{len(selections)} letter(s) not rendered yet")
        self.selections = selections


def create_deliveries(
    tx: Tx,
    digest_id: int,
    view: DigestView,
    personaliser: Personaliser,
    letters: dict[str, Letter],
    new_message_id: Callable[[], str],
    take: Covers = exactly,
) -> tuple[int, int]:
    """One row per active subscriber, in the caller's (write) transaction: pending with
    its variant, or skipped when none of their themes is in the digest. Returns
    (pending, skipped). ``letters`` holds the variants, rendered before the transaction
    began, by key: nothing is rendered here. Raises LettersMissing, before writing
    anything, when a subscriber's selection has no letter in it.

    The rows are made in the database (INSERT … SELECT, one statement per distinct
    theme list), never loading the subscribers; each Message-ID's left part is 128 random
    bits the database makes for the row (nothing in it counts subscribers)."""
    choices = [(raw, selection(themes, view, take)) for raw, themes in outbox.theme_choices(tx)]
    missing = {c for _, c in choices if c != () and variant_key(c) not in letters}
    if missing:
        raise LettersMissing(missing)
    variant_ids: dict[str, int] = {}
    prefix, domain = "<", "@" + new_message_id().strip("<>").rpartition("@")[2] + ">"
    counts = {"pending": 0, "skipped": 0}
    for raw, chosen in choices:
        if chosen == ():
            status, variant_id, error = DeliveryStatus.SKIPPED, None, "no theme"
        else:
            key = variant_key(chosen)
            if key not in variant_ids:
                letter = letters[key]
                mine = only(view, chosen, personaliser.subject)
                slugs = [s.slug for s in mine.sections] if chosen is not None else []
                variant_ids[key] = outbox.add_variant(
                    tx, digest_id, key, slugs, letter.subject, letter.html, letter.text
                )
            status, variant_id, error = DeliveryStatus.PENDING, variant_ids[key], None
        counts[status] += outbox.insert_for_themes(
            tx, digest_id, raw, status, variant_id, error, prefix, domain, view.published_at
        )
    return counts["pending"], counts["skipped"]


def letters(tx: Tx, variant_ids: Iterable[int]) -> dict[int, tuple[Letter, datetime]]:
    """The rendered variants by id, as letters, with their digest's publication time."""
    found = outbox.letters(tx, variant_ids)
    return {vid: (Letter(v.subject, v.html, v.text), v.published_at) for vid, v in found.items()}
