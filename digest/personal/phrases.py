"""The phrases a reader watches or mutes: a ";"-separated list, checked in one place
(count, length, no control characters, something to match), and matched as the area terms
are (sections/match.py ``words``: whole phrases, case, hyphens and punctuation folded) on
a paper's title and abstract."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

from digest.errors import DigestError
from digest.sections.match import words

MAX_PHRASES = 30  # phrases in one list
MAX_PHRASE = 100  # characters of one phrase
MAX_CELL = 2000  # characters of the whole list as given (a CSV cell, a form field)

__all__ = ["PhraseError", "Phrases", "check_phrases", "joined", "parse_phrases"]


class PhraseError(DigestError):
    """A list of watched or muted phrases is not acceptable."""


def parse_phrases(raw: str | Iterable[str], field: str = "watch") -> tuple[str, ...]:
    """The phrases of ``raw`` (";"-separated in a string), stripped, empties and repeats
    (as folded) dropped; raises PhraseError with one line naming ``field`` and what is
    wrong. ``""`` gives ()."""
    text = raw if isinstance(raw, str) else ";".join(raw)
    if len(text) > MAX_CELL:
        raise PhraseError(f"{field}: {len(text)} characters, more than {MAX_CELL}")
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            raise PhraseError(f"{field}: control character U+{ord(c):04X} is not allowed")
    kept: dict[tuple[str, ...], str] = {}
    for part in (" ".join(p.split()) for p in text.split(";")):
        if not part:
            continue
        if len(part) > MAX_PHRASE:
            raise PhraseError(
                f"{field}: phrase {part[:30]!r}… is {len(part)} characters, more than {MAX_PHRASE}"
            )
        folded = tuple(words(part))
        if not folded:
            raise PhraseError(f"{field}: phrase {part!r} has no letter or digit to match")
        kept.setdefault(folded, part)
    if len(kept) > MAX_PHRASES:
        raise PhraseError(f"{field}: {len(kept)} phrases, more than {MAX_PHRASES}")
    return tuple(kept.values())


def check_phrases(raw: str, field: str = "watch") -> str:
    """``raw`` checked and written back as stored: ``"a; b"``; "" for none."""
    return joined(parse_phrases(raw, field))


def joined(phrases: Sequence[str]) -> str:
    return "; ".join(phrases)


class Phrases:
    """The papers of one issue, indexed so that a phrase finds its papers at once: each
    paper's title and abstract folded into words, and which papers hold each word."""

    def __init__(self, texts: Sequence[tuple[str, str]]) -> None:
        """``texts``: (title, abstract) of each paper, in issue order."""
        self._titles = [f" {' '.join(words(t))} " for t, _ in texts]
        self._abstracts = [f" {' '.join(words(a))} " for _, a in texts]
        self._postings: dict[str, set[int]] = {}
        for i, (t, a) in enumerate(zip(self._titles, self._abstracts, strict=True)):
            for w in set(t.split()) | set(a.split()):
                self._postings.setdefault(w, set()).add(i)
        self._cache: dict[str, frozenset[int]] = {}

    def __len__(self) -> int:
        return len(self._titles)

    def papers(self, phrase: str) -> frozenset[int]:
        """The papers (indices) whose title or abstract holds ``phrase`` as whole words."""
        found = self._cache.get(phrase)
        if found is None:
            found = self._cache[phrase] = self._find(tuple(words(phrase)))
        return found

    def _find(self, folded: tuple[str, ...]) -> frozenset[int]:
        if not folded:
            return frozenset()
        postings = [self._postings.get(w, set()) for w in folded]
        candidates = set.intersection(*sorted(postings, key=len))
        if len(folded) == 1:
            return frozenset(candidates)
        key = f" {' '.join(folded)} "
        return frozenset(
            i for i in candidates if key in self._titles[i] or key in self._abstracts[i]
        )

    def first_match(self, phrases: Iterable[str]) -> dict[int, str]:
        """For each paper some phrase matches: the first phrase (in the reader's order)."""
        out: dict[int, str] = {}
        for phrase in phrases:
            for i in self.papers(phrase):
                out.setdefault(i, phrase)
        return out
