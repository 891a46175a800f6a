"""Each reader's own letter, put together from pieces rendered once per issue: the
publishing side (``prepare``, ``store``).

A reader who watches or mutes phrases, or marks papers "more / less", gets their
sections' letter (the variant every reader of those sections gets, fitted under the size
limit) with the papers they muted taken out and a "For you" block above the contents.
Nothing is rendered or inlined per reader: at publish time

* each variant some such reader receives is rendered once more through
  ``digest_pieces.html.j2``/``.txt.j2`` (the same templates, with a marker around each
  section and paper and where For you goes), the same fitting deciding the same papers;
* one For-you sheet holds every paper of the issue as a For-you entry (rendered and
  inlined once), with a marker where each entry's note goes;

and both are stored with the issue (state/readers.py), with what the readers' "more /
less" marks make of it (``feedback_part``). A worker (mail/personal_letters.py) cuts
them at the markers (mail/pieces.py) once per variant and quoted-printable encodes each
piece once; a reader's message is then a join of those byte strings, their note (the
phrase that matched, escaped and encoded on its own) and their unsubscribe token, as
``MessageTemplate`` fills its slots. The headers and the subject are those of the
reader's variant: nothing a reader enters reaches a header, and their phrases only ever
choose among pieces made for everyone.

Markers carry a random value made for each publication, so no dump text can forge one,
and dump text holding PLACEHOLDER is defused as in variants.py."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, cast

from digest.mail.message import (
    PLACEHOLDER,
    Letter,
)
from digest.mail.pieces import FORMAT, marker_of, strip
from digest.mail.variants import (
    DEFUSED,
    Covers,
    Personaliser,
    exactly,
    only,
    own_slots,
    selection,
    slot_marker,
    variant_key,
)
from digest.personal.phrases import Phrases
from digest.personal.profile import Space
from digest.personal.view import reader_view
from digest.render.inline import inline_css
from digest.render.renderer import Renderer, feedback_of, preferences_of
from digest.render.viewmodel import DigestView
from digest.state import feedback, readers
from digest.state import outbox as outbox_rows
from digest.state.handles import Tx

log = logging.getLogger(__name__)

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
            marked = inline_css(marked, self.renderer.stylesheet())
        plain = strip(marked, self.nonce)
        if inline:
            marker = self._marker(unsubscribe_url)
            self.html[own_slots(plain, marker)] = own_slots(marked, marker)
        return plain

    def email_text(self, view: DigestView, *, unsubscribe_url: str | None = None) -> str:
        context = self._context(view, unsubscribe_url, html=False)
        marked = self.renderer.text_page("digest_pieces.txt.j2", **context)
        plain = strip(marked, self.nonce)
        marker = self._marker(unsubscribe_url)
        self.text[own_slots(plain, marker)] = own_slots(marked, marker)
        return plain

    def _context(self, view: DigestView, url: str | None, *, html: bool) -> dict[str, Any]:
        return {
            "view": view,
            "unsubscribe_url": url,
            "preferences_url": preferences_of(url),
            "feedback": feedback_of(url),
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
    fy_html, fy_text = _sheet(renderer, view, nonce, personaliser.unsubscribe_url)
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
    started = time.perf_counter()
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
    log.info(
        "issue %d: profiles of %d readers with marks in %.3f s",
        view.issue,
        len(ids),
        time.perf_counter() - started,
    )
    return {"notes": list(notes), "readers": out}


def _sheet(
    renderer: Renderer, view: DigestView, nonce: str, unsubscribe_url: str
) -> tuple[str, str]:
    """Every paper of the issue as a For-you entry (html inlined once, and text); the
    html's "more / less" links hold the token's slot, as the letters' do."""
    every = [p for s in view.sections for p in s.papers]
    slot = slot_marker()
    context: dict[str, Any] = {
        "view": replace(view, sections=()),
        "unsubscribe_url": None,
        "preferences_url": None,
        "feedback": feedback_of(unsubscribe_url.replace(PLACEHOLDER, slot)),
        "for_you": every,
    }
    html_mark, text_mark = marker_of(nonce, html=True), marker_of(nonce, html=False)
    html = renderer.page("digest_pieces.html.j2", **context, mark=html_mark, note=html_mark("note"))
    html = inline_css(html, renderer.stylesheet())
    text = renderer.text_page(
        "digest_pieces.txt.j2", **context, mark=text_mark, note=text_mark("note")
    )
    return own_slots(html, slot), text.replace(PLACEHOLDER, DEFUSED)


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
