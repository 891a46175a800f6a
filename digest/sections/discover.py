"""Automatic topic sections for the papers no configured theme took.

How (deterministic: papers are put in a canonical order first, the SVD has a fixed seed
and runs on one BLAS thread, every choice has a full tie-break):

1. **Vectors**: TF-IDF of title (counted twice) and abstract, reduced by truncated SVD
   (LSA: at most 100 dimensions, at most half the number of papers) and normalised, so
   a dot product is a cosine similarity.
2. **Seeds**: candidate names are phrases seen verbatim in at least ``min_seed`` titles
   (:mod:`digest.themenames`); a candidate's papers are those whose title holds it. Its
   *cohesion* is the mean cosine between two of its papers (near 0 for a phrase like
   "large models" that papers on every topic use), and it scores
   ``papers × shrunk cohesion × (1 + 0.1 per extra word)``, the cohesion shrunk towards
   0.1 as if 4 more pairs had been seen (two alike papers prove little). The best
   candidate becomes a section and takes its papers; scores are updated without them and
   the next is chosen, until ``Limits.max_sections`` or no candidate is cohesive enough.
   A candidate whose papers sit next to a chosen section (centres closer than
   ``MERGE_SIMILARITY``) joins that section instead.
3. **Attachment**: every other paper joins the section whose centre it is most similar
   to, if at least ``ATTACH_SIMILARITY`` (a title holding every content word of the
   section's name adds ``TITLE_WORD_BONUS``).
4. **Leftovers**: sections smaller than ``Limits.min_section`` are dissolved and their
   papers attached elsewhere if they can be; what is left goes to the remaining section.
5. **Names**: each section is renamed by the title phrase that best covers its final
   papers (held by many of their titles and few others), spelled as titles spell it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from digest.sections.naming import (
    EDGE_WORDS,
    FUNCTION_WORDS,
    WEAK_WORDS,
    LowercaseIn,
    PhraseIndex,
    display_name,
    fold,
    word_set,
)

__all__ = ["AutoSection", "Discovery", "Limits", "discover"]

SEED = 0  # every random step uses this seed
MAX_DIMENSIONS = 100  # LSA keeps at most this many, and at most half the papers
MAX_SECTIONS = 30
MIN_COHESION = 0.22  # a seed's papers must be at least this alike (mean pair cosine)
MIN_COHESION_ONE_WORD = 0.24  # a one-word name is vaguer: ask a little more
PRIOR_COHESION, PRIOR_PAIRS = 0.1, 4  # two papers alike by chance prove little
MERGE_SIMILARITY = 0.5  # a candidate this close to a chosen section joins it
ATTACH_SIMILARITY = 0.28  # a paper needs this similarity to join a section
TITLE_WORD_BONUS = 0.12  # its title shares a word with the section's name
TOP_TERMS = 3

# Words of research prose that say nothing about the topic.
BOILERPLATE = word_set(
    """
    achieve achieved achieves additionally approach approaches art available based code com
    demonstrate demonstrates different effectiveness existing experimental experiments
    extensive framework furthermore github however http https improve improved improves
    including introduce introduces key main method methods model models moreover new novel
    outperform outperforms paper papers particular performance present presents propose
    proposed proposes recent recently respectively result results show shown shows
    significantly specifically state study use used using various work works www
    """
)
_STOP = sorted(ENGLISH_STOP_WORDS | BOILERPLATE)
_URL = re.compile(r"https?://\S+|www\.\S+")
_LATEX = re.compile(r"\\[A-Za-z]+|[{}^~$]")


@dataclass(frozen=True)
class Limits:
    """How many sections a digest of ``n`` papers gets, and how small one may be."""

    max_sections: int
    min_seed: int  # titles that must share a phrase for it to become a section
    min_section: int  # papers a section needs in the end

    @classmethod
    def for_size(cls, n: int) -> Limits:
        """About sqrt(n) sections (at most 30); fewer than 4 papers make no sections."""
        if n < 4:
            return cls(0, n + 1, n + 1)
        return cls(
            max_sections=min(MAX_SECTIONS, n // 3, max(1, round(1.5 * math.sqrt(n)))),
            min_seed=max(2, round(n / 120)),
            min_section=max(2 if n < 12 else 3, round(n / 80)),
        )


@dataclass
class AutoSection:
    name: str
    members: list[int] = field(default_factory=list)  # indices into the input
    reasons: list[str] = field(default_factory=list)  # one per member


@dataclass
class Discovery:
    sections: list[AutoSection]
    leftovers: list[int]
    leftover_reasons: list[str]


@dataclass
class _Seed:
    key: tuple[str, ...]
    docs: list[int]  # canonical indices whose title names it
    extra: list[int] = field(default_factory=list)  # absorbed from a near-identical candidate


def clean(text: str) -> str:
    """Text for the vectoriser: urls and LaTeX markup removed."""
    return _LATEX.sub(" ", _URL.sub(" ", text))


def _vectors(
    titles: Sequence[str], abstracts: Sequence[str]
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """TF-IDF rows, their normalised LSA vectors, and the TF-IDF column names."""
    n = len(titles)
    docs = [clean(f"{t}. {t}. {a}") for t, a in zip(titles, abstracts, strict=True)]
    vectorizer = TfidfVectorizer(
        stop_words=_STOP,
        sublinear_tf=False,
        min_df=2 if n >= 20 else 1,
        max_df=0.5 if n >= 20 else 1.0,
        max_features=50_000,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9]+\b",
        dtype=np.float32,
    )
    try:
        tfidf = vectorizer.fit_transform(docs).tocsr()
        names = vectorizer.get_feature_names_out()
    except ValueError:  # no usable word at all
        tfidf, names = sp.csr_matrix((n, 1)), np.array([""])
    dims = min(MAX_DIMENSIONS, n // 2, tfidf.shape[1] - 1)
    if dims >= 2:
        with np.errstate(invalid="ignore", divide="ignore"):  # identical papers: no variance
            reduced = TruncatedSVD(dims, n_iter=3, random_state=SEED).fit_transform(tfidf)
    else:
        reduced = tfidf.toarray()
    return tfidf, normalize(reduced), names


def _indicator(index: PhraseIndex, keys: list[tuple[str, ...]], n: int) -> sp.csr_matrix:
    rows = [r for r, k in enumerate(keys) for _ in index.docs[k]]
    cols = [i for k in keys for i in index.docs[k]]
    data = np.ones(len(rows))
    return sp.csr_matrix((data, (rows, cols)), shape=(len(keys), n))


def _choose_seeds(
    index: PhraseIndex, vectors: np.ndarray, limits: Limits, reserved: frozenset[str]
) -> list[_Seed]:
    keys = [k for k in index.docs if " ".join(k) not in reserved]
    if not keys or limits.max_sections == 0:
        return []
    member = _indicator(index, keys, len(vectors))
    sums = np.asarray(member @ vectors)
    counts = np.asarray(member.sum(axis=1)).ravel()
    bonus = np.array([1 + 0.1 * (min(len(k), 3) - 1) for k in keys])
    floor = np.array([MIN_COHESION_ONE_WORD if len(k) == 1 else MIN_COHESION for k in keys])
    free = np.ones(len(vectors), dtype=bool)
    seeds: list[_Seed] = []
    while len(seeds) < limits.max_sections:
        pairs = counts * (counts - 1)
        pair_sum = np.einsum("ij,ij->i", sums, sums) - counts
        cohesion = pair_sum / np.maximum(pairs, 1)  # mean cosine of two of its papers
        shrunk = (pair_sum + PRIOR_PAIRS * PRIOR_COHESION) / (pairs + PRIOR_PAIRS)
        ok = (counts >= limits.min_seed) & (cohesion >= floor)
        if not ok.any():
            break
        score = np.where(ok, counts * shrunk * bonus, -1.0)
        best = int(np.argmax(score))  # ties: the first key in sorted order
        docs = [i for i in index.docs[keys[best]] if free[i]]
        _place(seeds, _Seed(keys[best], docs), vectors)
        claimed = np.zeros(len(vectors), dtype=bool)
        claimed[docs] = True
        free &= ~claimed
        gone = member[:, claimed]
        sums -= np.asarray(gone @ vectors[claimed])
        counts -= np.asarray(gone.sum(axis=1)).ravel()
    return seeds


def _place(seeds: list[_Seed], seed: _Seed, vectors: np.ndarray) -> None:
    """Add a seed, or fold its papers into a chosen one it is nearly the same as."""
    if seeds:
        centres = normalize(np.array([vectors[s.docs].mean(axis=0) for s in seeds]))
        centre = normalize(vectors[seed.docs].mean(axis=0, keepdims=True))[0]
        sims = centres @ centre
        nearest = int(np.argmax(sims))
        if sims[nearest] >= MERGE_SIMILARITY:
            seeds[nearest].extra.extend(seed.docs)
            return
    seeds.append(seed)


def _strong_words(key: tuple[str, ...]) -> frozenset[str]:
    skip = FUNCTION_WORDS | EDGE_WORDS | WEAK_WORDS
    return frozenset(w for w in key if w not in skip)


def _title_words(title: str) -> frozenset[str]:
    return frozenset(fold(w) for w in re.findall(r"[A-Za-z0-9]+", title))


@dataclass
class _Group:
    key: tuple[str, ...]
    seeded: list[int]  # papers whose title holds the seed phrase
    docs: list[int]  # every paper of the group, seeded ones first
    centre: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def of(cls, seed: _Seed, vectors: np.ndarray) -> _Group:
        docs = [*seed.docs, *seed.extra]
        centre = normalize(vectors[docs].mean(axis=0, keepdims=True))[0]
        return cls(seed.key, list(seed.docs), docs, centre)


def _attach(
    groups: list[_Group],
    candidates: list[int],
    vectors: np.ndarray,
    titles: Sequence[str],
    similarity: np.ndarray,
) -> list[int]:
    """Each candidate joins the group it is most similar to (a title sharing a word of the
    group's name counts extra), if similar enough; returns the ones that joined none."""
    if not groups:
        return list(candidates)
    sims = vectors[candidates] @ np.array([g.centre for g in groups]).T
    strong = [_strong_words(g.key) for g in groups]
    left = []
    for row, i in enumerate(candidates):
        words = _title_words(titles[i])
        sims[row] += [TITLE_WORD_BONUS if s and s <= words else 0.0 for s in strong]
        j = int(np.argmax(sims[row]))
        similarity[i] = sims[row, j]
        if sims[row, j] >= ATTACH_SIMILARITY:
            groups[j].docs.append(i)
        else:
            left.append(i)
    return left


def _relabel(group: _Group, index: PhraseIndex, used: set[tuple[str, ...]]) -> tuple[str, ...]:
    """The phrase that best names the group's final papers: held by many of their titles
    and by few titles elsewhere; more words are more telling."""
    members = set(group.docs)
    best, best_score = group.key, -1.0
    for key, docs in index.docs.items():
        inside = sum(1 for i in docs if i in members)
        if inside < 2 and key != group.key:
            continue
        score = inside * (inside / len(docs)) * (1 + 0.25 * (min(len(key), 3) - 1))
        if score > best_score and (key == group.key or key not in used):
            best, best_score = key, score
    return _extend(best, members, index, used)


def _extend(
    key: tuple[str, ...], members: set[int], index: PhraseIndex, used: set[tuple[str, ...]]
) -> tuple[str, ...]:
    """A name that stops short reads poorly ("In-context", "Music"): take a longer phrase
    (3 words at most) that contains it, when at least half of the group's titles that
    carry the name carry the longer phrase too."""
    carrying = sum(1 for i in index.docs[key] if i in members)
    best, best_inside = key, 0
    for longer, docs in index.docs.items():
        if not len(key) < len(longer) <= 3 or longer in used or not _within(key, longer):
            continue
        inside = sum(1 for i in docs if i in members)
        if 2 * inside >= carrying and inside >= 2 and inside > best_inside:
            best, best_inside = longer, inside
    return best


def _within(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    n = len(short)
    return any(long[i : i + n] == short for i in range(len(long) - n + 1))


def _top_terms(tfidf: sp.csr_matrix, group: list[int], names: np.ndarray) -> list[list[str]]:
    """For each paper of a group, the words it shares most with the group."""
    rows = tfidf[group]
    centre = np.asarray(rows.mean(axis=0))
    shared = sp.csr_matrix(rows.multiply(centre))
    out = []
    for r in range(shared.shape[0]):
        start, end = shared.indptr[r], shared.indptr[r + 1]
        data, cols = shared.data[start:end], shared.indices[start:end]
        order = np.lexsort((cols, -data))[:TOP_TERMS]
        out.append([str(names[cols[o]]) for o in order if data[o] > 0])
    return out


def _group(
    titles: Sequence[str], vectors: np.ndarray, limits: Limits, reserved: frozenset[str]
) -> tuple[list[_Group], list[int], np.ndarray, PhraseIndex]:
    """Seed, attach, dissolve the small groups, attach their papers elsewhere, relabel."""
    n = len(titles)
    index = PhraseIndex.build(titles, limits.min_seed)
    groups = [_Group.of(s, vectors) for s in _choose_seeds(index, vectors, limits, reserved)]
    similarity = np.zeros(n)
    for g in groups:
        similarity[g.docs] = vectors[g.docs] @ g.centre
    taken = {i for g in groups for i in g.docs}
    left = _attach(groups, [i for i in range(n) if i not in taken], vectors, titles, similarity)
    kept = [g for g in groups if len(g.docs) >= limits.min_section]
    freed = sorted(i for g in groups if len(g.docs) < limits.min_section for i in g.docs)
    left += _attach(kept, freed, vectors, titles, similarity)
    used = {g.key for g in kept} | {tuple(r.split()) for r in reserved}
    for g in kept:
        used.discard(g.key)
        g.key = _relabel(g, index, used)
        used.add(g.key)
    return kept, sorted(left), similarity, index


def discover(
    titles: Sequence[str], abstracts: Sequence[str], *, reserved: Sequence[str] = ()
) -> Discovery:
    """Group papers into named topic sections; ``reserved`` names are not used."""
    with threadpool_limits(1):  # small matrices: one BLAS thread is faster, and steadier
        return _discover(titles, abstracts, reserved)


def _discover(
    titles: Sequence[str], abstracts: Sequence[str], reserved: Sequence[str]
) -> Discovery:
    n = len(titles)
    limits = Limits.for_size(n)
    if limits.max_sections == 0:
        return Discovery([], list(range(n)), ["too few papers for automatic themes"] * n)
    order = sorted(range(n), key=lambda i: (titles[i].casefold(), titles[i], abstracts[i]))
    t = [titles[i] for i in order]
    a = [abstracts[i] for i in order]
    tfidf, vectors, names = _vectors(t, a)
    taken = frozenset(" ".join(fold(w) for w in r.replace("-", " ").split()) for r in reserved)
    groups, left, similarity, index = _group(t, vectors, limits, taken)
    common = LowercaseIn(a)
    discovery = Discovery([], [order[i] for i in left], [])
    for i in left:
        discovery.leftover_reasons.append(
            f"automatic: close to no section (best similarity {similarity[i]:.2f})"
        )
    for g in groups:
        name = display_name(index.spelling(g.key, g.docs, t), common)
        section = AutoSection(name)
        named = set(index.docs.get(g.key, ()))
        for i, terms in zip(g.docs, _top_terms(tfidf, g.docs, names), strict=True):
            section.members.append(order[i])
            section.reasons.append(_reason(name, i in named, similarity[i], terms))
        discovery.sections.append(section)
    return discovery


def _reason(name: str, named: bool, similarity: float, terms: list[str]) -> str:
    top = f"top terms: {', '.join(terms)}" if terms else "no shared terms"
    if named:
        return f"automatic: title mentions '{name}' ({top})"
    return f"automatic: similar to '{name}' (similarity {similarity:.2f}; {top})"
