"""A delivery worker's side of each reader's own letter: a variant's message that can be
put together for one reader (``PersonalTemplate``: their view of the issue from their
phrases and the suggestions and order their marks made at publish time, joined from the
issue's pieces, mail/pieces.py), and the templates a worker keeps (``Personal``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from digest.mail import outbox
from digest.mail.message import (
    DkimSigner,
    Envelope,
    Letter,
    MessageTemplate,
)
from digest.mail.pieces import FORMAT, cut_letter, cut_sheet, html_note, join, text_note
from digest.personal.phrases import Phrases
from digest.personal.view import ReaderView, Suggestion, reader_view
from digest.state import readers
from digest.state.claims import Job
from digest.state.handles import Database

log = logging.getLogger(__name__)

VIEWS_KEPT = 32  # letters kept ready (by what they show) for readers who share a view
TEMPLATES_KEPT = 16  # variants a worker keeps ready (a long-running one sees many issues)

# --------------------------------------------------------------------------- a reader's


class PersonalTemplate(MessageTemplate):
    """A variant's message (``MessageTemplate``: its headers, subject and slots) that can
    also be put together for one reader from the issue's pieces."""

    def __init__(
        self,
        letter: Letter,
        envelope: Envelope,
        date: datetime,
        signer: DkimSigner | None,
        pieces: dict[str, Any],
        key: str,
    ) -> None:
        super().__init__(letter, envelope, date, signer)
        nonce = pieces["nonce"]
        mine = pieces["letters"][key]
        self.html_cut = cut_letter(mine["html"], nonce)
        self.text_cut = cut_letter(mine["text"], nonce)
        self.html_sheet = cut_sheet(pieces["for_you"]["html"], nonce)
        self.text_sheet = cut_sheet(pieces["for_you"]["text"], nonce)
        papers = pieces["papers"]
        self.anchors = tuple(a for a, _, _ in papers)
        self.index = Phrases([(t, a) for _, t, a in papers])
        self.for_you_max = int(pieces["for_you_max"])
        self.notes: list[str] = list(pieces.get("notes", ()))
        self.marked: dict[str, dict[str, list[Any]]] = dict(pieces.get("readers", {}))
        self._views: dict[tuple[str, str, tuple[Suggestion, ...]], ReaderView] = {}
        self._letters: dict[Any, tuple[tuple[bytes, ...], tuple[bytes, ...]]] = {}
        self._lock = threading.Lock()  # the caches are shared by the sending threads

    def view_of(self, watch: str, mute: str, suggestions: Sequence[Suggestion]) -> ReaderView:
        """A reader's view (kept for the next reader with the same phrases)."""
        key = (watch, mute, tuple(suggestions))
        with self._lock:
            found = self._views.get(key)
        if found is None:
            found = reader_view(
                self.index,
                self.anchors,
                self.html_cut.papers,
                watch,
                mute,
                self.for_you_max,
                suggestions,
                chosen=self.text_cut.papers,  # the text part lists every paper of theirs
            )
            with self._lock:
                _kept(self._views, key, found)
        return found

    def feedback_of(self, subscriber_id: int) -> tuple[list[Suggestion], list[str]] | None:
        """The suggestions and the order of papers the reader's marks made at publish
        time (None for a reader with no profile)."""
        mine = self.marked.get(str(subscriber_id))
        if mine is None:
            return None
        anchors, notes = self.anchors, self.notes
        suggestions = [(anchors[i], notes[n]) for i, n in mine["s"]]
        return suggestions, [anchors[i] for i in mine.get("o", ())]

    def _parts(
        self, mine: ReaderView, order: tuple[str, ...]
    ) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """The text and html parts of a view, cut where the token goes (kept for the
        next reader who sees the same)."""
        key = (mine, order)
        with self._lock:
            found = self._letters.get(key)
        if found is None:
            gone = mine.muted | {a for a, _ in mine.for_you}
            rank = {a: n for n, a in enumerate(order)}
            found = (
                join(self.text_cut, self.text_sheet, mine.for_you, gone, text_note, rank),
                join(self.html_cut, self.html_sheet, mine.for_you, gone, html_note, rank),
            )
            with self._lock:
                _kept(self._letters, key, found)
        return found

    def render_for(
        self,
        to: str,
        message_id: str,
        token: str,
        name: str = "",
        *,
        watch: str = "",
        mute: str = "",
        suggestions: Sequence[Suggestion] = (),
        order: Sequence[str] = (),
    ) -> bytes:
        """This reader's message: their variant's, with what they muted taken out, their
        For-you block above the contents and the papers of each section in ``order``
        (anchors; () keeps the letter's), the variant's own bytes when their view
        changes nothing."""
        mine = self.view_of(watch, mute, suggestions)
        if not mine.changed and not order:
            return self.render(to, message_id, token, name)
        tok = self._token(token)
        text_parts, html_parts = self._parts(mine, tuple(order))
        return self._assemble(to, message_id, tok, name, tok.join(text_parts), tok.join(html_parts))


def _kept(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(cache) >= VIEWS_KEPT:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value


# --------------------------------------------------------------------------- delivering


class Personal:
    """What a delivery worker needs for readers who watch, mute or mark papers: each variant's
    PersonalTemplate, made once (from its issue's pieces) and kept while the run lasts."""

    def __init__(self, engine: Database, envelope: Envelope) -> None:
        self.engine, self.envelope = engine, envelope
        self._lock = threading.Lock()
        self._made: dict[int, PersonalTemplate | None] = {}

    def message(self, base: MessageTemplate, job: Job) -> bytes:
        """The message of ``job``: its variant's (``base``) for a reader who watches and
        mutes nothing, else their own."""
        watch, mute = job.watch, job.mute
        template = self._template(base, job.variant_id)
        marked = template.feedback_of(job.subscriber_id) if template is not None else None
        if template is None or not (watch or mute or marked):
            return base.render(job.address, job.message_id, job.token, job.name)
        suggestions, order = marked or ((), ())
        return template.render_for(
            job.address,
            job.message_id,
            job.token,
            job.name,
            watch=watch,
            mute=mute,
            suggestions=suggestions,
            order=order,
        )

    def _template(self, base: MessageTemplate, variant_id: int) -> PersonalTemplate | None:
        with self._lock:
            if variant_id in self._made:
                return self._made[variant_id]
        with self.engine.connect() as conn:
            found = readers.pieces_of(conn, variant_id)
            stored, when = outbox.letters(conn, {variant_id})[variant_id]
        made = None
        if found is not None:
            key, blob = found
            pieces = json.loads(blob)
            if pieces.get("format") == FORMAT and key in pieces["letters"]:
                made = PersonalTemplate(stored, self.envelope, when, base.signer, pieces, key)
        with self._lock:
            if variant_id not in self._made and len(self._made) >= TEMPLATES_KEPT:
                self._made.pop(next(iter(self._made)))  # an older issue's, most likely
            return self._made.setdefault(variant_id, made)
