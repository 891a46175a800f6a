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
3. **Its area**: each paper gets the area with the highest score among those a paper may
   have (every area but a *group*: a top-level area whose children are sections of their
   own; ties: vocabulary order). A paper with no score at all goes to the pool. The
   section it prints under follows from the vocabulary (:meth:`Vocabulary.section_of`),
   never from how many papers the digest has.
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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from digest.sections.areas import Vocabulary

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AreaMatch", "assignable", "match_areas", "term_index"]

TITLE_WEIGHT = 1.0  # a title hit counts this much on top of the abstract's hits
K1, B = 1.2, 0.75  # BM25 saturation and length normalisation
SMOOTHING = 0.7  # share of a paper's scores taken from its neighbours
NEIGHBOURS = 20
MAX_DF = 0.5
KEEP_TERMS = 30  # each paper's strongest words used for similarity (0: all)
_CHUNK = 1024  # rows of the similarity matrix computed at once
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lowercase word tokens: punctuation and hyphens separate words."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class _TermIndex:
    terms: tuple[tuple[str, ...], ...]  # folded phrases
    starts: dict[str, list[int]]  # first word -> term ids, longest first
    areas_of: tuple[tuple[int, ...], ...]  # term id -> area indices


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
    starts: dict[str, list[int]] = defaultdict(list)
    for words_of, i in ids.items():
        starts[words_of[0]].append(i)
    terms = tuple(ids)
    for lst in starts.values():
        lst.sort(key=lambda i: (-len(terms[i]), terms[i]))
    return _TermIndex(terms, dict(starts), tuple(tuple(a) for a in areas_of))


def _hits(tokens: list[str], index: _TermIndex) -> Counter[int]:
    """Term ids found in ``tokens``; where terms overlap, the longest one at a position
    counts (so "mixture of experts" is not also "experts")."""
    found: Counter[int] = Counter()
    starts, terms = index.starts, index.terms
    covered = 0  # positions before this are inside a phrase already counted
    for i in [i for i, w in enumerate(tokens) if w in starts]:
        if i < covered:
            continue
        for t in starts[tokens[i]]:
            phrase = terms[t]
            if len(phrase) == 1 or tuple(tokens[i : i + len(phrase)]) == phrase:
                found[t] += 1
                covered = i + len(phrase)
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


def _bm25(titles: list[list[str]], abstracts: list[list[str]], index: _TermIndex, n_areas: int):
    """(papers x areas scores, per paper its matched term ids -> (title, abstract) hits)
    from word tokens."""
    import numpy as np
    import scipy.sparse as sp

    rows, cols, freq, lengths, matched = [], [], [], [], []
    for i, (in_title, in_abstract) in enumerate(zip(titles, abstracts, strict=True)):
        abstract_hits = _hits(in_abstract, index)
        title_hits = _hits(in_title, index)
        hits: dict[int, float] = dict(abstract_hits)
        for t, c in title_hits.items():
            hits[t] = hits.get(t, 0) + TITLE_WEIGHT * c
        lengths.append(len(in_abstract) + len(in_title))
        ids = sorted(hits)
        matched.append({t: (title_hits[t], abstract_hits[t]) for t in ids})
        rows += [i] * len(ids)
        cols += ids
        freq += [hits[t] for t in ids]
    n, n_terms = len(titles), len(index.terms)
    f = sp.csr_matrix((np.array(freq, float), (rows, cols)), shape=(n, n_terms))
    df = np.bincount(np.array(cols, dtype=np.int64), minlength=n_terms)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    length = np.array(lengths, float)
    norm = K1 * (1 - B + B * length / max(float(length.mean()) if n else 1.0, 1.0))
    f = f.tocoo()
    weight = idf[f.col] * f.data * (K1 + 1) / (f.data + norm[f.row])
    w = sp.csr_matrix((weight, (f.row, f.col)), shape=(n, n_terms))
    t_rows = [t for t, areas in enumerate(index.areas_of) for _ in areas]
    t_cols = [a for areas in index.areas_of for a in areas]
    incidence = sp.csr_matrix((np.ones(len(t_rows)), (t_rows, t_cols)), shape=(n_terms, n_areas))
    return np.asarray((w @ incidence).todense()), matched


def neighbours(titles: list[list[str]], abstracts: list[list[str]], k: int) -> tuple[Any, Any]:
    """(indices, weights): each paper's ``k`` most similar others by TF-IDF cosine of
    their words (title counted twice; stop words and words in over ``MAX_DF`` of the
    papers left out: they say little and make the product slow)."""
    import numpy as np
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

    n = len(titles)
    k = min(k, n - 1)
    docs = [
        [w for w in (*t, *t, *a) if w not in ENGLISH_STOP_WORDS and not w.isdigit()]
        for t, a in zip(titles, abstracts, strict=True)
    ]
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
        block = (x[start : start + _CHUNK] @ xt).toarray()
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -1.0
        top = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < n else None
        if top is None:
            continue
        vals = np.take_along_axis(block, top, axis=1)
        order = np.lexsort((top, -vals), axis=1)  # by similarity, then index: deterministic
        idx[start : start + block.shape[0]] = np.take_along_axis(top, order, axis=1)
        sim[start : start + block.shape[0]] = np.take_along_axis(vals, order, axis=1)
    return idx, np.maximum(sim, 0.0)


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
    titles: Sequence[str], abstracts: Sequence[str], vocabulary: Vocabulary
) -> AreaMatch:
    """Each paper's own area (index into ``vocabulary.areas``, -1 for the pool), with a
    reason, its fit and whether it is weak; see the module docstring."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    n = len(titles)
    order = sorted(range(n), key=lambda i: (titles[i].casefold(), titles[i], abstracts[i]))
    t = [titles[i] for i in order]
    a = [abstracts[i] for i in order]
    index = term_index(vocabulary)
    areas = vocabulary.areas
    t_words, a_words = [words(x) for x in t], [words(x) for x in a]
    with threadpool_limits(1):
        own, matched = _bm25(t_words, a_words, index, len(areas))
        scores = own
        idx = np.zeros((n, 0), dtype=np.int64)
        if n > 2 and SMOOTHING:
            idx, sim = neighbours(t_words, a_words, NEIGHBOURS)
            w = sim / np.maximum(sim.sum(axis=1, keepdims=True), 1e-9)
            mixed = np.einsum("nk,nka->na", w, own[idx])
            scores = (1 - SMOOTHING) * own + SMOOTHING * mixed
    allowed = np.array(assignable(vocabulary), dtype=bool)
    masked = np.where(allowed, scores, 0.0) if len(areas) else scores
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
        result.neighbours[i] = [order[j] for j in idx[canon]]
        if x >= 0:
            result.fit[i] = float(own[canon, x])
            result.weak[i] = _weak(matched[canon], x, index)
    return result


@functools.lru_cache(maxsize=8)
def assignable(vocabulary: Vocabulary) -> tuple[bool, ...]:
    """Per area, whether it may be a paper's area: every area but a group (an area with a
    child that is a section of its own: the group is the reader's table of contents, not a
    grab-bag section printed beside its children)."""
    groups = {a.parent for a in vocabulary if a.parent and a.section_slug == a.slug}
    return tuple(a.slug not in groups for a in vocabulary)


def _weak(matched: dict[int, tuple[int, int]], area: int, index: _TermIndex) -> bool:
    """Whether the paper names ``area`` by at most one mention, and not in its title."""
    title = abstract = 0
    for t, (in_title, in_abstract) in matched.items():
        if area in index.areas_of[t]:
            title, abstract = title + in_title, abstract + in_abstract
    return title == 0 and abstract <= 1


def _why(name: str, i: int, matched, scores, area: int, index: _TermIndex) -> str:
    terms = [" ".join(index.terms[t]) for t in matched[i] if area in index.areas_of[t]]
    score = float(scores[i, area])
    if terms:
        shown = ", ".join(terms[:5]) + (", …" if len(terms) > 5 else "")
        return f"area {name}: terms {shown} (score {score:.2f})"
    return f"area {name}: like its nearest papers (score {score:.2f})"
