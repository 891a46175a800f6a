"""What is worked out once per paper and kept with it: its one-line summary
(:func:`digest.sections.summary.summarise`) and where the terms of the vocabulary's areas
occur in it (:func:`digest.sections.match.paper_terms`; how much each weighs depends on
the digest, so that part is left to each publish).

Facts are kept in a store (``state.papers.FactsTable``) under a version that names the
summariser, the term matcher and the vocabulary's terms: facts of another version are
worked out again, so a changed summariser or vocabulary never serves stale ones. They are
worked out once papers are stored (:func:`work_out`, after the ingest's write, outside the
write lock), and at publish (:func:`gather`) for papers that have none of this version.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from digest.sections.summary import summarise

if TYPE_CHECKING:
    from digest.sections.areas import Vocabulary

__all__ = [
    "FactStore",
    "PaperFacts",
    "decoded",
    "facts_of",
    "gather",
    "summaries",
    "version",
    "work_out",
]

SUMMARY_VERSION = 1  # raise it when summarise() changes what it returns
TERMS_VERSION = 1  # raise it when match.paper_terms() changes what it finds


@dataclass(frozen=True)
class PaperFacts:
    summary: str  # the one-line summary ("" for an empty abstract)
    hits: tuple[tuple[str, int, int], ...]  # (area term, hits in title, in abstract)
    words: int  # words in the title and abstract


class HasId(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str: ...


class FactStore(Protocol):
    """Where facts are kept, as plain values: (summary, hits as JSON text, words)."""

    def load(self, ids: Sequence[int], version: str) -> dict[int, tuple[str, str, int]]: ...
    def save(self, version: str, rows: Sequence[tuple[int, str, str, int]]) -> None: ...
    def unworked(self, version: str) -> list[tuple[int, str, str]]: ...


@functools.lru_cache(maxsize=8)
def version(vocabulary: Vocabulary) -> str:
    """The version facts are kept under: the summariser's, the matcher's, and a hash of
    the vocabulary's terms (the areas they mark do not change a paper's hits)."""
    from digest.sections.match import term_index

    terms = "\n".join(sorted(" ".join(t) for t in term_index(vocabulary).terms))
    digest = hashlib.sha256(terms.encode()).hexdigest()[:16]
    return f"s{SUMMARY_VERSION}.t{TERMS_VERSION}.{digest}"


def facts_of(title: str, abstract: str, vocabulary: Vocabulary) -> PaperFacts:
    """The facts of one paper, worked out now."""
    from digest.sections.match import paper_terms, term_index, words

    index = term_index(vocabulary)
    in_title, in_abstract = words(title), words(abstract)
    matched = paper_terms(in_title, in_abstract, index)
    hits = tuple((" ".join(index.terms[t]), a, b) for t, (a, b) in matched.items())
    return PaperFacts(summarise(abstract), hits, len(in_title) + len(in_abstract))


def _row(pid: int, facts: PaperFacts) -> tuple[int, str, str, int]:
    return pid, facts.summary, json.dumps(facts.hits, ensure_ascii=False), facts.words


def decoded(row: tuple[str, str, int]) -> PaperFacts:
    """Facts from a stored row (summary, hits as JSON text, words)."""
    summary, hits, words = row
    return PaperFacts(
        summary, tuple((str(t), int(a), int(b)) for t, a, b in json.loads(hits)), words
    )


def work_out(store: FactStore, vocabulary: Vocabulary) -> int:
    """Work out and keep the facts of every pending paper that has none of this version
    (read first, worked out with no lock held, then saved in one short write); returns
    how many. The caller commits."""
    current = version(vocabulary)
    rows = [_row(pid, facts_of(t, a, vocabulary)) for pid, t, a in store.unworked(current)]
    store.save(current, rows)
    return len(rows)


def gather(
    papers: Sequence[HasId], vocabulary: Vocabulary, store: FactStore
) -> dict[str, PaperFacts]:
    """Each paper's facts by paper key: those kept, the others worked out now (and not
    kept: a publish writes nothing before its one short write; the next ingest keeps
    them)."""
    current = version(vocabulary)
    kept = store.load([p.id for p in papers], current)
    return {
        p.key: decoded(kept[p.id]) if p.id in kept else facts_of(p.title, p.abstract, vocabulary)
        for p in papers
    }


def summaries(facts: Mapping[str, PaperFacts]) -> dict[str, str]:
    """Each paper's summary by paper key."""
    return {key: f.summary for key, f in facts.items()}
