"""Matching papers to the research areas of the vocabulary: each paper's own area.

How (chosen by measurement against editors' hand-sorting; see the README's Themes section):

1. **Term scores (BM25)**: each area is a query made of its name and marking terms. A
   term is found as a whole phrase in the title and abstract (case, hyphens and
   punctuation folded); a title hit adds to the abstract hits (``TITLE_WEIGHT``). Each
   hit is weighted BM25-style: rare terms in this digest weigh more (idf), repeats
   saturate (``K1``) and long abstracts are normalised (``B``).
2. **Neighbour smoothing**: a paper's area scores are mixed (``SMOOTHING``) with those of
   its ``NEIGHBOURS`` most similar papers (weighted by similarity: TF-IDF cosine of
   title and abstract, each paper cut to its ``KEEP_TERMS`` strongest words), so papers
   on the same topic land together even when one of them names it with words the
   vocabulary lacks.
3. **Its area**: the area with the highest score among those the paper may have. Its own
   words come first: the areas it names firmly (a term in its title, or more than one in
   its abstract) if any, else those it names in passing; only a paper that names none
   takes whatever its neighbours point to. Neighbours choose between the areas a paper
   names, never outvote its title. A *group* (a top-level area whose children are
   sections of their own) is never a paper's area; ties: vocabulary order; a paper with
   no score goes to the pool. Its section follows from the vocabulary
   (:meth:`Vocabulary.section_of`), never from how many papers the digest has.
4. **Fit**: how well the paper fits its area is its own score there (before smoothing);
   a paper that names its area by one stray word in the abstract only (or not at all) is
   *weak*: it never leads its section.

Deterministic and independent of input order: papers are put in a canonical order first,
and every choice has a full tie-break.
"""

from __future__ import annotations

import functools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.sections.areas import Vocabulary

if TYPE_CHECKING:
    import numpy as np

    from digest.sections.facts import PaperFacts

__all__ = ["AreaMatch", "assignable", "match_areas", "paper_terms", "term_index", "words"]

TITLE_WEIGHT = 1.0  # a title hit counts this much on top of the abstract's hits
K1, B = 1.2, 0.75  # BM25 saturation and length normalisation
SMOOTHING = 0.7  # share of a paper's scores taken from its neighbours
NEIGHBOURS = 20
MAX_DF = 0.5
KEEP_TERMS = 30  # each paper's strongest words used for similarity (0: all)
_CHUNK = 1024  # rows of the (sparse) similarity matrix computed at once
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lowercase word tokens: punctuation and hyphens separate words."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class _TermIndex:
    terms: tuple[tuple[str, ...], ...]  # folded phrases
    starts: dict[str, tuple[tuple[int, dict[tuple[str, ...], int]], ...]]
    # first word -> (length, the terms of that length starting with it -> id), longest first
    areas_of: tuple[tuple[int, ...], ...]  # term id -> area indices
    ids: dict[str, int]  # a term's words joined by a space -> term id


@functools.lru_cache(maxsize=8)
def term_index(vocabulary: Vocabulary) -> _TermIndex:
    """Every area's terms (its name included) as word tuples, indexed by first word."""
    ids: dict[tuple[str, ...], int] = {}
    areas_of: list[list[int]] = []
    for a, area in enumerate(vocabulary):
        for phrase in (area.name, *area.terms):
            folded = tuple(words(phrase))
            if not folded:
                continue
            if folded not in ids:
                ids[folded] = len(ids)
                areas_of.append([])
            if a not in areas_of[ids[folded]]:
                areas_of[ids[folded]].append(a)
    by_first: dict[str, dict[int, dict[tuple[str, ...], int]]] = defaultdict(dict)
    for words_of, i in ids.items():
        by_first[words_of[0]].setdefault(len(words_of), {})[words_of] = i
    starts = {w: tuple(sorted(lengths.items(), reverse=True)) for w, lengths in by_first.items()}
    terms = tuple(ids)
    joined = {" ".join(t): i for i, t in enumerate(terms)}
    return _TermIndex(terms, starts, tuple(tuple(a) for a in areas_of), joined)


def _hits(tokens: list[str], index: _TermIndex) -> Counter[int]:
    """Term ids found in ``tokens``; where terms overlap, the longest one at a position
    counts (so "mixture of experts" is not also "experts")."""
    found: Counter[int] = Counter()
    starts = index.starts
    covered = 0  # positions before this are inside a phrase already counted
    for i in [i for i, w in enumerate(tokens) if w in starts]:
        if i < covered:
            continue
        for length, phrases in starts[tokens[i]]:  # at most one term of each length fits
            t = phrases.get(tuple(tokens[i : i + length]))
            if t is not None:
                found[t] += 1
                covered = i + length
                break
    return found


@dataclass
class AreaMatch:
    """Per paper (in input order): the area index it is in (-1: pool) and why."""

    area: list[int]
    reasons: list[str]
    scores: np.ndarray  # papers x areas, after smoothing
    neighbours: list[list[int]]  # each paper's most similar papers, most similar first
    fit: list[float]  # the paper's own score on its area (0 in the pool)
    weak: list[bool]  # its area rests on one abstract mention at most: never leads


def paper_terms(
    in_title: list[str], in_abstract: list[str], index: _TermIndex
) -> dict[int, tuple[int, int]]:
    """A paper's matched term ids (in order) -> (title hits, abstract hits), from its word
    tokens: what the paper alone says (kept per paper: digest.sections.facts)."""
    abstract_hits = _hits(in_abstract, index)
    title_hits = _hits(in_title, index)
    return {t: (title_hits[t], abstract_hits[t]) for t in sorted({*abstract_hits, *title_hits})}


def _incidence(index: _TermIndex, n_areas: int) -> Any:
    """Terms x areas: 1 where the term marks the area."""
    import numpy as np
    import scipy.sparse as sp

    rows = [t for t, areas in enumerate(index.areas_of) for _ in areas]
    cols = [a for areas in index.areas_of for a in areas]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(index.terms), n_areas))


def _bm25(matched: list[dict[int, tuple[int, int]]], lengths: list[int], incidence: Any) -> Any:
    """Papers x areas scores from each paper's matched terms and length in words."""
    import numpy as np
    import scipy.sparse as sp

    rows, cols, freq = [], [], []
    for i, found in enumerate(matched):
        rows += [i] * len(found)
        cols += list(found)
        freq += [b + TITLE_WEIGHT * a for a, b in found.values()]
    n, n_terms = len(matched), incidence.shape[0]
    f = sp.csr_matrix((np.array(freq, float), (rows, cols)), shape=(n, n_terms))
    df = np.bincount(np.array(cols, dtype=np.int64), minlength=n_terms)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    length = np.array(lengths, float)
    norm = K1 * (1 - B + B * length / max(float(length.mean()) if n else 1.0, 1.0))
    f = f.tocoo()
    weight = idf[f.col] * f.data * (K1 + 1) / (f.data + norm[f.row])
    w = sp.csr_matrix((weight, (f.row, f.col)), shape=(n, n_terms))
    return np.asarray((w @ incidence).todense())


def _named(matched: list[dict[int, tuple[int, int]]], incidence: Any) -> tuple[Any, Any]:
    """(named, firm), papers x areas: the paper names the area at all, and firmly (in its
    title, or more than once in its abstract; else it is *weak* there)."""
    import numpy as np
    import scipy.sparse as sp

    rows = [i for i, found in enumerate(matched) for _ in found]
    cols = [t for found in matched for t in found]
    shape = (len(matched), incidence.shape[0])

    def per_area(counts: list[int]) -> Any:
        c = sp.csr_matrix((np.array(counts, float), (rows, cols)), shape=shape)
        return np.asarray((c @ incidence).todense())

    title = per_area([a for found in matched for a, _ in found.values()])
    abstract = per_area([b for found in matched for _, b in found.values()])
    return (title + abstract) > 0, (title > 0) | (abstract > 1)


def _candidates(named: Any, firm: Any, allowed: Any, below: Any) -> Any:
    """Papers x areas: the areas each paper may have (step 3 of the module docstring).
    Naming an area admits the areas ``below`` it (areas x areas: itself and its
    descendants); naming a group admits nothing: "language models" is too broad."""
    import numpy as np

    firm = (((firm & allowed).astype(float) @ below) > 0) & allowed
    named = (((named & allowed).astype(float) @ below) > 0) & allowed
    any_firm, any_named = firm.any(axis=1, keepdims=True), named.any(axis=1, keepdims=True)
    return np.where(any_firm, firm, np.where(any_named, named, allowed))


@functools.lru_cache(maxsize=8)
def _below(vocabulary: Vocabulary) -> Any:
    """Areas x areas: 1 where the column is the row's area or an area below it."""
    import numpy as np

    at = {a.slug: k for k, a in enumerate(vocabulary)}
    below = np.zeros((len(at), len(at)))
    for k, area in enumerate(vocabulary):
        below[k, [at[d] for d in vocabulary.descendants(area.slug)]] = 1
    return below


def _kept_terms(facts: PaperFacts | None, index: _TermIndex) -> dict[int, tuple[int, int]] | None:
    """A paper's matched terms from its kept facts (None when it has none for these terms)."""
    if facts is None:
        return None
    ids = index.ids
    if not all(t in ids for t, _, _ in facts.hits):
        return None
    return dict(sorted((ids[t], (a, b)) for t, a, b in facts.hits))


def similarity_words(in_title: list[str], in_abstract: list[str]) -> list[str]:
    """The words a paper is compared by: title counted twice, no stop words or numbers."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [
        w
        for w in (*in_title, *in_title, *in_abstract)
        if w not in ENGLISH_STOP_WORDS and not w.isdigit()
    ]


def neighbours(docs: Iterable[list[str]], n: int, k: int) -> tuple[Any, Any]:
    """(indices, weights): each of the ``n`` papers' ``k`` most similar others by TF-IDF
    cosine of their ``docs`` (:func:`similarity_words`, read once, so they may be made on
    the fly; words in over ``MAX_DF`` of the papers left out: they say little and make the
    product slow)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    k = min(k, n - 1)
    vectorizer = TfidfVectorizer(
        analyzer=_same, sublinear_tf=True, dtype=np.float32, max_df=MAX_DF if n >= 50 else 1.0
    )
    try:
        weights = vectorizer.fit_transform(docs)
    except ValueError:  # no word tells the papers apart (all stop words, or in every paper)
        return np.zeros((n, k), dtype=np.int64), np.zeros((n, k), dtype=np.float32)
    x = _strongest(weights, KEEP_TERMS)
    xt = x.T.tocsr()
    idx = np.zeros((n, k), dtype=np.int64)
    sim = np.zeros((n, k), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        block = (x[start : start + _CHUNK] @ xt).tocsr()  # sparse: only papers sharing a word
        for row in range(block.shape[0]):
            lo, hi = block.indptr[row], block.indptr[row + 1]
            idx[start + row], sim[start + row] = _top(
                block.indices[lo:hi], block.data[lo:hi], start + row, k
            )
    return idx, np.maximum(sim, 0.0)


def _top(cols: Any, vals: Any, me: int, k: int) -> tuple[Any, Any]:
    """The ``k`` largest of one sparse row of similarities (``me``, the paper itself, left
    out), by similarity then index; padded with ``me`` at similarity 0 when fewer than
    ``k`` papers share a word with it."""
    import numpy as np

    keep = (cols != me) & (vals > 0)
    cols, vals = cols[keep], vals[keep]
    if len(vals) > k:  # every value tied with the k-th is kept, so ties break by index
        kth = np.partition(vals, len(vals) - k)[len(vals) - k]
        near = vals >= kth
        cols, vals = cols[near], vals[near]
    order = np.lexsort((cols, -vals))[:k]
    pad = k - len(order)
    return (
        np.concatenate([cols[order], np.full(pad, me, dtype=np.int64)]),
        np.concatenate([vals[order], np.zeros(pad, dtype=np.float32)]),
    )


def _strongest(x: Any, keep: int) -> Any:
    """Each row of the CSR matrix ``x`` cut to its ``keep`` largest weights (ties: lower
    column) and normalised again: the words that say what a paper is about, at a
    fraction of the cost of the full product."""
    import numpy as np
    from sklearn.preprocessing import normalize

    lengths = np.diff(x.indptr)
    if not keep or lengths.max(initial=0) <= keep:
        return x
    mask = np.ones(x.nnz, dtype=bool)
    for row in np.flatnonzero(lengths > keep):
        lo, hi = x.indptr[row], x.indptr[row + 1]
        order = np.lexsort((x.indices[lo:hi], -x.data[lo:hi]))
        mask[lo + order[keep:]] = False
    x = x.copy()
    x.data = np.where(mask, x.data, 0).astype(x.data.dtype)
    x.eliminate_zeros()
    return normalize(x)


def _same(tokens: list[str]) -> list[str]:
    return tokens


def match_areas(
    titles: Sequence[str],
    abstracts: Sequence[str],
    vocabulary: Vocabulary,
    facts: Sequence[PaperFacts | None] | None = None,
) -> AreaMatch:
    """Each paper's own area (index into ``vocabulary.areas``, -1 for the pool), with a
    reason, its fit and whether it is weak; see the module docstring. ``facts`` (in input
    order) are the papers' kept facts, where they have any: their term hits are not
    looked for again."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    n = len(titles)
    order = sorted(range(n), key=lambda i: (titles[i].casefold(), titles[i], abstracts[i]))
    t = [titles[i] for i in order]
    a = [abstracts[i] for i in order]
    index = term_index(vocabulary)
    areas = vocabulary.areas
    kept = [_kept_terms(facts[i], index) for i in order] if facts else [None] * n
    matched: list[dict[int, tuple[int, int]]] = []
    lengths: list[int] = []

    def docs() -> Iterator[list[str]]:
        """Each paper's words, made one paper at a time (all papers' tokens at once would
        hold hundreds of MB at 10,000 papers), its matched terms and length noted."""
        for c in range(n):
            in_title, in_abstract = words(t[c]), words(a[c])
            lengths.append(len(in_title) + len(in_abstract))
            found = kept[c]
            matched.append(paper_terms(in_title, in_abstract, index) if found is None else found)
            yield similarity_words(in_title, in_abstract)

    with threadpool_limits(1):
        idx = np.zeros((n, 0), dtype=np.int64)
        sim = np.zeros((n, 0), dtype=np.float32)
        made = docs()
        if n > 2 and SMOOTHING:
            idx, sim = neighbours(made, n, NEIGHBOURS)
        for _ in made:  # every paper's terms and length, whether or not neighbours read it
            pass
        incidence = _incidence(index, len(areas))
        own = _bm25(matched, lengths, incidence)
        scores = own
        if idx.shape[1]:
            w = sim / np.maximum(sim.sum(axis=1, keepdims=True), 1e-9)
            mixed = np.empty_like(own)
            for lo in range(0, n, _CHUNK):  # own[idx] whole would be papers x k x areas
                hi = lo + _CHUNK
                mixed[lo:hi] = np.einsum("nk,nka->na", w[lo:hi], own[idx[lo:hi]])
            scores = (1 - SMOOTHING) * own + SMOOTHING * mixed
    allowed = np.array(assignable(vocabulary), dtype=bool)
    named, firm = _named(matched, incidence)
    choice = _candidates(named, firm, allowed, _below(vocabulary))
    masked = np.where(choice, scores, 0.0) if len(areas) else scores
    label = [int(np.argmax(masked[i])) if masked[i].max() > 0 else -1 for i in range(n)]
    notes = [_why(areas[label[i]].name, i, matched, masked, label[i], index) if label[i] >= 0
             else "no area term, and no similar paper has one" for i in range(n)]  # fmt: skip
    result = AreaMatch(
        [-1] * n, [""] * n, np.zeros_like(masked), [[] for _ in range(n)], [0.0] * n, [True] * n
    )
    for canon, i in enumerate(order):
        x = label[canon]
        result.area[i] = x
        result.reasons[i] = notes[canon]
        result.scores[i] = masked[canon]
        result.neighbours[i] = [
            order[j] for j, s in zip(idx[canon], sim[canon], strict=True) if s > 0
        ]
        if x >= 0:
            result.fit[i] = float(own[canon, x])
            result.weak[i] = not firm[canon, x]
    return result


@functools.lru_cache(maxsize=8)
def assignable(vocabulary: Vocabulary) -> tuple[bool, ...]:
    """Per area, whether it may be a paper's area: every area but a group (an area with a
    child that is a section of its own: the group is the reader's table of contents, not a
    grab-bag section printed beside its children)."""
    groups = {a.parent for a in vocabulary if a.parent and a.section_slug == a.slug}
    return tuple(a.slug not in groups for a in vocabulary)


def _why(name: str, i: int, matched, scores, area: int, index: _TermIndex) -> str:
    terms = [" ".join(index.terms[t]) for t in matched[i] if area in index.areas_of[t]]
    score = float(scores[i, area])
    if terms:
        shown = ", ".join(terms[:5]) + (", …" if len(terms) > 5 else "")
        return f"area {name}: terms {shown} (score {score:.2f})"
    return f"area {name}: like its nearest papers (score {score:.2f})"
