"""Each reader's own letter, put together from pieces rendered once per issue.

A reader who watches or mutes phrases gets their sections' letter (the variant every
reader of those sections gets, fitted under the size limit) with the papers they muted
taken out and a "For you" block above the contents. Nothing is rendered or inlined per
reader: at publish time

* each variant some such reader receives is rendered once more through
  ``digest_pieces.html.j2``/``.txt.j2`` (the same templates, with a marker around each
  section and paper and where For you goes), the same fitting deciding the same papers;
* one For-you sheet holds every paper of the issue as a For-you entry (rendered and
  inlined once), with a marker where each entry's note goes;

and both are stored with the issue (state/readers.py). A worker cuts them at the markers
once per variant and quoted-printable encodes each piece once; a reader's message is then
a join of those byte strings, their note (the phrase that matched, escaped and encoded on
its own) and their unsubscribe token, as ``MessageTemplate`` fills its slots. The
headers and the subject are those of the reader's variant: nothing a reader enters
reaches a header, and their phrases only ever choose among pieces made for everyone.

Markers carry a random value made for each publication, so no dump text can forge one,
and dump text holding PLACEHOLDER is defused as in variants.py.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from markupsafe import Markup, escape

from digest.addresses import TOKEN_RE
from digest.mail import outbox
from digest.mail.message import (
    PLACEHOLDER,
    DkimSigner,
    Envelope,
    Letter,
    MessageTemplate,
    to_header,
)
from digest.mail.message import _qp as qp
from digest.mail.variants import (
    DEFUSED,
    Covers,
    Personaliser,
    exactly,
    only,
    own_slots,
    selection,
    variant_key,
)
from digest.personal.phrases import Phrases
from digest.personal.profile import Space
from digest.personal.view import ReaderView, Suggestion, reader_view
from digest.render.inline import inline_css
from digest.render.renderer import Renderer, preferences_of
from digest.render.viewmodel import DigestView
from digest.state import feedback, readers
from digest.state import outbox as outbox_rows
from digest.state.handles import Database, Tx
from digest.state.outbox import Job

log = logging.getLogger(__name__)

FORMAT = 1  # of the stored pieces
SOFT = b"=\r\n"  # a quoted-printable soft line break: joins pieces, adds nothing


# --------------------------------------------------------------------------- publishing


class _Marking:
    """A renderer for a Personaliser that renders through the pieces templates and
    returns the e-mail without its markers (so every size measured, and every choice the
    fitting makes, is the unmarked e-mail's), keeping the marked copy of each."""

    def __init__(self, renderer: Renderer, nonce: str, unsubscribe_url: str) -> None:
        self.renderer, self.nonce = renderer, nonce
        self._url = unsubscribe_url.partition(PLACEHOLDER)
        self.html: dict[str, str] = {}  # the letter's html (slots filled) -> marked
        self.text: dict[str, str] = {}

    def email_html(
        self, view: DigestView, *, unsubscribe_url: str | None = None, inline: bool = True
    ) -> str:
        marked = self.renderer.page(
            "digest_pieces.html.j2", **self._context(view, unsubscribe_url, html=True)
        )
        if inline:
            marked = inline_css(marked, self.renderer._source("style.css"))
        plain = strip(marked, self.nonce)
        if inline:
            marker = self._marker(unsubscribe_url)
            self.html[own_slots(plain, marker)] = own_slots(marked, marker)
        return plain

    def email_text(self, view: DigestView, *, unsubscribe_url: str | None = None) -> str:
        env = self.renderer._text_env
        context = self._context(view, unsubscribe_url, html=False)
        marked = self.renderer._render(env, "digest_pieces.txt.j2", **context)
        plain = strip(marked, self.nonce)
        marker = self._marker(unsubscribe_url)
        self.text[own_slots(plain, marker)] = own_slots(marked, marker)
        return plain

    def _context(self, view: DigestView, url: str | None, *, html: bool) -> dict[str, Any]:
        return {
            "view": view,
            "unsubscribe_url": url,
            "preferences_url": preferences_of(url),
            "mark": marker_of(self.nonce, html=html),
            "for_you": (),
            "note": "",
        }

    def _marker(self, url: str | None) -> str:
        """The slot marker the Personaliser put in the unsubscribe url."""
        head, found, tail = self._url
        if not url or not found:
            return "\0"  # no slot: own_slots only defuses
        return url.removeprefix(head).removesuffix(tail) if tail else url.removeprefix(head)


def marker_of(nonce: str, *, html: bool) -> Callable[..., str]:
    def mark(kind: str, ident: str = "") -> str:
        text = f"{nonce}:{kind}:{ident}"
        return Markup(f"<!--{text}-->") if html else f"\x00{text}\x00"

    return mark


def _pattern(nonce: str) -> re.Pattern[str]:
    return re.compile(rf"(?:<!--|\x00){nonce}:([a-z/-]+):([^>\x00]*?)(?:-->|\x00)")


def strip(marked: str, nonce: str) -> str:
    return _pattern(nonce).sub("", marked)


FOR_YOU_ONLY = "for-you"  # the key of the letter of a reader none of whose topics is in


@dataclass(frozen=True)
class Prepared:
    """What ``prepare`` made: the pieces (JSON), and the letter of readers none of whose
    topics is in the issue but whom a watched paper reaches (only For you)."""

    blob: str
    for_you_only: Letter | None


def prepare(
    tx: Tx,
    view: DigestView,
    personaliser: Personaliser,
    for_you_max: int,
    take: Covers = exactly,
) -> Prepared | None:
    """The issue's letter in pieces for the readers who watch or mute something (None
    when nobody does): the marked letter of each variant they receive and the For-you
    sheet. Read before the write transaction; stored by ``store``."""
    choices = readers.personal_theme_choices(tx)
    if not choices:
        return None
    nonce = secrets.token_hex(12)
    renderer = personaliser.renderer
    marking = _Marking(renderer, nonce, personaliser.unsubscribe_url)
    marked = replace(personaliser, renderer=cast(Renderer, marking))
    letters: dict[str, dict[str, str]] = {}
    only_for_you: Letter | None = None
    for themes in choices:
        chosen = selection(themes, view, take)
        key = FOR_YOU_ONLY if chosen == () else variant_key(chosen)
        if key in letters:
            continue
        mine = only(view, chosen, personaliser.subject)
        if chosen == ():  # the issue's own subject, not "0 papers"
            mine = replace(mine, subject=view.subject)
        letter = marked.letter(mine)
        html, text = marking.html.get(letter.html), marking.text.get(letter.text)
        marking.html.clear()
        marking.text.clear()
        if html is None or text is None:
            log.warning("issue %d: letter %s could not be cut in pieces", view.issue, key)
            continue
        letters[key] = {"html": html, "text": text}
        if chosen == ():
            only_for_you = letter
    every = [p for s in view.sections for p in s.papers]
    fy_html, fy_text = _sheet(renderer, view, nonce)
    blob = {
        "format": FORMAT,
        "nonce": nonce,
        "for_you_max": for_you_max,
        "papers": [[p.anchor, p.title, p.abstract] for p in every],
        "for_you": {"html": fy_html, "text": fy_text},
        "letters": letters,
        **feedback_part(tx, view, for_you_max),
    }
    return Prepared(json.dumps(blob), only_for_you)


def feedback_part(tx: Tx, view: DigestView, for_you_max: int) -> dict[str, Any]:
    """What the marks of the readers who have any make of this issue, worked out once for
    all of them (one TF-IDF space of the issue's papers and the rated ones, every profile
    one sparse product): ``notes`` (each distinct ``like: <title>``) and ``readers``, by
    subscriber id, each with ``s`` their suggestions ([paper index, note index], best
    first) and, when it differs from the issue's, ``o`` their order of the issue's
    papers (each section's ordered by their profile)."""
    marks = readers.active_marks(tx)
    if not marks:
        return {}
    every = [p for s in view.sections for p in s.papers]
    index = {p.key: n for n, p in enumerate(every)}
    rated = feedback.paper_texts(tx, {k for m in marks.values() for k, _ in m} - set(index))
    texts = [(p.key, p.title, p.abstract) for p in every]
    space = Space([*texts, *((t.key, t.title, t.abstract) for t in rated.values())])
    ids = list(marks)
    notes: dict[str, int] = {}
    out: dict[str, dict[str, list[Any]]] = {}
    keys = [p.key for p in every]
    sections = [[p.key for p in s.papers] for s in view.sections]
    for sid, profile in zip(ids, space.profiles([marks[i] for i in ids]), strict=True):
        if profile is None:
            continue
        picks = profile.suggest(keys, 2 * for_you_max)  # some may be muted or watched
        mine: dict[str, list[Any]] = {
            "s": [[index[k], notes.setdefault(note, len(notes))] for k, note in picks]
        }
        order = [index[k] for keys_of in sections for k in profile.order(keys_of)]
        if order != sorted(order):
            mine["o"] = order
        out[str(sid)] = mine
    return {"notes": list(notes), "readers": out}


def _sheet(renderer: Renderer, view: DigestView, nonce: str) -> tuple[str, str]:
    """Every paper of the issue as a For-you entry (html inlined once, and text)."""
    every = [p for s in view.sections for p in s.papers]
    context: dict[str, Any] = {
        "view": replace(view, sections=()),
        "unsubscribe_url": None,
        "preferences_url": None,
        "for_you": every,
    }
    html_mark, text_mark = marker_of(nonce, html=True), marker_of(nonce, html=False)
    html = renderer.page("digest_pieces.html.j2", **context, mark=html_mark, note=html_mark("note"))
    html = inline_css(html, renderer._source("style.css"))
    text = renderer._render(
        renderer._text_env,
        "digest_pieces.txt.j2",
        **context,
        mark=text_mark,
        note=text_mark("note"),
    )
    return html.replace(PLACEHOLDER, DEFUSED), text.replace(PLACEHOLDER, DEFUSED)


def store(
    tx: Tx, digest_id: int, prepared: Prepared | None, new_message_id: Callable[[], str]
) -> int:
    """Store what ``prepare`` made, with the issue (in the publishing transaction); a
    reader none of whose topics is in the issue but who watches one of its papers gets
    a letter after all (only For you). Returns how many such readers there are."""
    if prepared is None:
        return 0
    readers.store_pieces(tx, digest_id, prepared.blob)
    letter = prepared.for_you_only
    if letter is None:
        return 0
    papers = json.loads(prepared.blob)["papers"]
    index, anchors = Phrases([(t, a) for _, t, a in papers]), [a for a, _, _ in papers]
    reached = [
        delivery
        for delivery, watch, mute in readers.skipped_watchers(tx, digest_id)
        if reader_view(index, anchors, (), watch, mute, 0).for_you
    ]
    if reached:
        variant = outbox_rows.add_variant(
            tx, digest_id, FOR_YOU_ONLY, [], letter.subject, letter.html, letter.text
        )
        readers.send_after_all(tx, [(d, variant, new_message_id()) for d in reached])
    return len(reached)


# --------------------------------------------------------------------------- cutting

# A piece: quoted-printable bytes, or (the few that hold the unsubscribe token) a tuple
# of them, the token going between each two.
Piece = bytes | tuple[bytes, ...]
VIEWS_KEPT = 32  # letters kept ready (by what they show) for readers who share a view
TEMPLATES_KEPT = 16  # variants a worker keeps ready (a long-running one sees many issues)


def _piece(text: str) -> Piece:
    parts = text.split(PLACEHOLDER)
    return qp(text) if len(parts) == 1 else tuple(qp(part) for part in parts)


class _Parts:
    """Pieces joined with soft line breaks, cut where the token goes."""

    def __init__(self) -> None:
        self.segments: list[bytes] = []
        self.current: list[bytes] = []

    def add(self, piece: Piece) -> None:
        if isinstance(piece, bytes):
            if piece:
                self.current.append(piece)
            return
        first, *middle, last = piece
        self.current.append(first)
        self.segments.append(SOFT.join(self.current) + SOFT)
        self.segments += (SOFT + p + SOFT for p in middle)
        self.current = [SOFT + last]

    def done(self) -> tuple[bytes, ...]:
        return (*self.segments, SOFT.join(self.current))


@dataclass(frozen=True)
class _Section:
    brief: bool
    items: tuple[tuple[str, Piece], ...]  # ("", piece) text, (anchor, piece) a paper
    empty: bool = False  # what a letter with no paper says instead ("No new papers")

    @property
    def whole(self) -> Piece:
        """The section as its letter shows it (nothing taken out)."""
        if any(isinstance(p, tuple) for _, p in self.items):
            return ()  # holds the token: taken piece by piece
        return SOFT.join(p for _, p in self.items if isinstance(p, bytes) and p)

    @property
    def papers(self) -> frozenset[str]:
        return frozenset(a for a, _ in self.items if a)


@dataclass(frozen=True)
class Cut:
    """One part (html or text) of a variant's letter, in pieces."""

    head: Piece  # up to where For you goes
    body: tuple[_Section | Piece, ...]  # sections and the text between them
    papers: tuple[str, ...]  # anchors of the papers it shows, in order

    @functools.cached_property
    def parts(self) -> tuple[tuple[_Section | Piece, Piece, frozenset[str]], ...]:
        """Each part of the body with its whole bytes and its papers, worked out once."""
        return tuple(
            (p, p.whole, p.papers) if isinstance(p, _Section) else (p, p, frozenset())
            for p in self.body
        )


def cut_letter(marked: str, nonce: str) -> Cut:
    tokens = _pattern(nonce).split(marked)
    head, rest = tokens[0], tokens[1:]
    body: list[_Section | Piece] = []
    papers: list[str] = []
    section: list[tuple[str, Piece]] | None = None
    brief = False
    since, seen = 0, False  # where the sections began; whether any was seen
    started = False  # the For-you mark was seen: what follows is the body
    before: list[str] = [head]
    for i in range(0, len(rest), 3):
        kind, ident, text = rest[i], rest[i + 1], rest[i + 2]
        if not started:
            if kind == "for-you":
                started = True
                body.append(_piece(text))
            else:
                before.append(text)
            continue
        if kind == "sections":
            since, seen = len(body), False
            body.append(_piece(text))
        elif kind == "/sections":
            if not seen and section is None:  # the letter's "no paper" words
                words = tuple(("", p) for p in body[since:] if isinstance(p, (bytes, tuple)))
                body[since:] = [_Section(False, words, empty=True)]
            body.append(_piece(text))
        elif kind == "section":
            seen = True
            section, brief = [("", _piece(text))], ident.endswith(":brief")
        elif kind == "paper":
            papers.append(ident)
            if section is not None:
                section.append((ident, _piece(text)))
            else:  # a paper outside any section (a template that has none)
                body.append(_Section(True, ((ident, _piece(text)),)))
        elif kind == "/section" and section is not None:
            body.append(_Section(brief, tuple(section)))
            section = None
            body.append(_piece(text))
        elif section is not None:  # "/paper": text between papers, or a section's tail
            section.append(("", _piece(text)))
        else:
            body.append(_piece(text))
    return Cut(_piece("".join(before)), tuple(body), tuple(papers))


@dataclass(frozen=True)
class Sheet:
    """The For-you block's pieces: its heading, and each paper around its note."""

    head: Piece
    papers: dict[str, tuple[Piece, Piece]]


def cut_sheet(marked: str, nonce: str) -> Sheet:
    tokens = _pattern(nonce).split(marked)
    head: Piece = b""
    papers: dict[str, tuple[Piece, Piece]] = {}
    current, before = "", ""
    rest = tokens[1:]
    for i in range(0, len(rest), 3):
        kind, ident, text = rest[i], rest[i + 1], rest[i + 2]
        if kind == "fy-head":
            head = _piece(text)
        elif kind == "fy-paper":
            current, before = ident, text
        elif kind == "note" and current:
            papers[current] = (_piece(before), _piece(text))
            current = ""
    return Sheet(head, papers)


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
                _join(self.text_cut, self.text_sheet, mine.for_you, gone, _text_note, rank),
                _join(self.html_cut, self.html_sheet, mine.for_you, gone, _html_note, rank),
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
        if not TOKEN_RE.fullmatch(token):
            raise ValueError("malformed unsubscribe token")
        tok = token.encode("ascii")
        text_parts, html_parts = self._parts(mine, tuple(order))
        text, html = tok.join(text_parts), tok.join(html_parts)
        u1, u2, u3 = self._unsub
        msg = b"".join(
            (
                to_header(to, name),
                b"Message-ID: " + message_id.encode("ascii") + b"\r\n",
                u1 + tok + u2 + tok + u3,
                self._head,
                self._text_head,
                text,
                self._html_head,
                html,
                self._end,
            )
        )
        return self.signer.sign(msg) + msg if self.signer else msg


def _kept(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(cache) >= VIEWS_KEPT:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value


def _join(
    cut: Cut,
    sheet: Sheet,
    for_you: Sequence[tuple[str, str]],
    gone: set[str] | frozenset[str],
    note: Callable[[str], bytes],
    rank: dict[str, int] | None = None,
) -> tuple[bytes, ...]:
    """The part for one view, cut where the token goes (join with the token); ``rank``:
    where each paper goes in its section (none: where the letter has it)."""
    out = _Parts()
    out.add(cut.head)
    entries = [(a, n) for a, n in for_you if a in sheet.papers]
    if entries:
        out.add(sheet.head)
        for anchor, why in entries:
            before, after = sheet.papers[anchor]
            out.add(before)
            out.add(note(why))
            out.add(after)
    for part, whole, papers in cut.parts:
        if not isinstance(part, _Section):
            out.add(part)
        elif part.empty and entries:
            continue  # no paper of their topics, but some For you
        elif whole and not (papers & gone) and not (rank and len(papers) > 1):
            out.add(whole)
        elif papers and papers <= gone and not part.brief:
            continue  # every paper of the section went: so does its heading
        else:
            items = [(a, p) for a, p in part.items if not a or a not in gone]
            for _, piece in _reordered(items, rank) if rank else items:
                out.add(piece)
    return out.done()


def _reordered(items: list[tuple[str, Piece]], rank: dict[str, int]) -> list[tuple[str, Piece]]:
    """A section's items with its papers in the reader's order (the text between them
    stays where it is)."""
    slots = [n for n, (a, _) in enumerate(items) if a]
    papers = sorted((items[n] for n in slots), key=lambda item: rank.get(item[0], len(rank)))
    out = list(items)
    for n, item in zip(slots, papers, strict=True):
        out[n] = item
    return out


def _html_note(note: str) -> bytes:
    return qp(str(escape(_printable(note))))


def _text_note(note: str) -> bytes:
    return qp(_printable(note))


def _printable(note: str) -> str:
    return " ".join("".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in note).split())


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
