"""A reader's profile from their "more / less like this" marks: a Rocchio centroid over
the TF-IDF of the papers they rated (the mean of the "more" papers minus ``BETA`` times
the mean of the "less" ones). It picks the feedback part of "For you" (`suggest`) and
orders the papers of that reader's sections by how well they fit both the section and
the reader (`order`); a reader with no marks keeps today's order exactly.

Why a centroid and not a small linear model (logistic regression per reader), measured
by tests/bench/bench_profiles.py: readers simulated as liking one area of the sample issue
(10 "more" on its papers, 10 "less" on others, marked on one half of the papers,
suggestions from the other half) got 0.794 of their top 5 from their area with the
centroid (BETA 0.5; 0.751 with BETA 0, 0.783 with 0.25) and 0.796 with logistic
regression, which took ~100 ms a reader against ~3-7 ms, and the centroids of all
readers are one sparse product. BETA 1 ranks as well as 0.5 with 10 marks of each, but
one "less" then outweighs one "more" on a near twin; 0.5 keeps the liked paper's kind.
A suggestion must fit at least MIN_FIT (cosine), so a reader is never offered a paper
that only shares a stray word with what they liked.

Papers are named by an opaque id (a paper key, or an anchor of the issue): whatever the
caller gives, it gets back. One `Space` is fitted per issue over the candidates and every
rated paper (TF-IDF once), and then each reader costs a sparse row sum.

Pure: numpy, scipy and scikit-learn; no database, no rendering.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BETA", "Mark", "PaperText", "Profile", "Space", "order", "suggest"]

BETA = 0.5  # weight of the "less" centroid
MIN_FIT = 0.05  # a suggestion fits at least this well (cosine with the centroid)
READER_WEIGHT = 1.0  # in `order`: the reader's fit next to the section's (rank) fit

PaperText = tuple[str, str, str]  # (id, title, abstract)
Mark = tuple[str, int]  # (id, +1 more like this / -1 less)


class Space:
    """The TF-IDF of a set of papers (title counted twice, English stop words left out),
    fitted once; rows L2-normalised, so a dot product is a cosine."""

    def __init__(self, papers: Iterable[PaperText]) -> None:
        import numpy as np
        from sklearn.feature_extraction.text import TfidfVectorizer

        seen: dict[str, PaperText] = {}
        for paper in papers:
            seen.setdefault(paper[0], paper)
        self.ids = list(seen)
        self.titles = {i: p[1] for i, p in seen.items()}
        self.row = {pid: n for n, pid in enumerate(self.ids)}
        docs = [f"{t}. {t}. {a}" for _, t, a in seen.values()]
        vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, dtype=np.float32)
        try:
            self.matrix = vectorizer.fit_transform(docs) if docs else None
        except ValueError:  # no word at all (every text empty or only stop words)
            self.matrix = None

    def profile(self, marks: Iterable[Mark]) -> Profile | None:
        """The reader's profile, or None when no mark names a paper of this space."""
        return next(iter(self.profiles([list(marks)])), None)

    def profiles(self, readers: Sequence[Sequence[Mark]]) -> list[Profile | None]:
        """Every reader's profile at once (one sparse product), None for a reader with
        no mark on a paper of this space."""
        import numpy as np
        import scipy.sparse as sp

        if self.matrix is None or not readers:
            return [None] * len(readers)
        rows, cols, vals = [], [], []
        for r, marks in enumerate(readers):
            more = [self.row[k] for k, v in marks if v > 0 and k in self.row]
            less = [self.row[k] for k, v in marks if v < 0 and k in self.row]
            for group, weight in ((more, 1.0), (less, -BETA)):
                for c in group:
                    rows.append(r)
                    cols.append(c)
                    vals.append(weight / len(group))
        weights = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(readers), len(self.ids))
        )
        centroids = (weights @ self.matrix).tocsr()
        out: list[Profile | None] = []
        for r, marks in enumerate(readers):
            rated = {k: v for k, v in marks if k in self.row}
            if centroids.indptr[r] == centroids.indptr[r + 1]:
                out.append(None)
                continue
            out.append(Profile(self, centroids[r], rated))
        return out


@dataclass(frozen=True)
class Profile:
    """One reader's centroid in a `Space`, and the marks it came from."""

    space: Space
    vector: Any  # 1 x terms, sparse
    rated: Mapping[str, int]  # id -> +1 / -1, of the papers of the space

    @functools.cached_property
    def _fit(self) -> Any:
        """The cosine of every paper of the space with the centroid (one product)."""
        assert self.space.matrix is not None
        return self.space.matrix @ self.vector.toarray().ravel()  # sparse x dense: fast

    def scores(self, ids: Sequence[str]) -> list[float]:
        """How well each paper fits the reader (cosine with the centroid; 0 for an id the
        space does not hold)."""
        if self.space.matrix is None:
            return [0.0] * len(ids)
        fit, row = self._fit, self.space.row
        return [float(fit[row[i]]) if i in row else 0.0 for i in ids]

    def nearest_liked(self, papers: Sequence[str]) -> list[str]:
        """For each paper, the title of the paper marked "more" it is nearest to ("" when
        there is none)."""
        liked = sorted(self.space.row[k] for k, v in self.rated.items() if v > 0)
        rows = [self.space.row.get(p, -1) for p in papers]
        if not liked or self.space.matrix is None or min(rows, default=-1) < 0:
            return ["" for _ in papers]
        matrix = self.space.matrix
        sims = (matrix[rows] @ matrix[liked].T).toarray()  # papers x liked
        best = sims.argmax(axis=1)  # ties: the first liked row
        return [self.space.titles[self.space.ids[liked[b]]] for b in best]

    def suggest(
        self, candidates: Sequence[str], k: int, muted: Collection[str] = ()
    ) -> list[tuple[str, str]]:
        """The `k` candidates that fit the reader best, best first, each with the note
        ``like: <title of the liked paper it is nearest to>``: never a paper the reader
        marked (least of all "less"), never a muted one, never one that does not fit
        (score under MIN_FIT)."""
        muted = set(muted)
        pool = [
            c
            for c in dict.fromkeys(candidates)
            if c not in muted and c not in self.rated and c in self.space.row
        ]
        scored = [(s, -n, c) for n, (c, s) in enumerate(zip(pool, self.scores(pool), strict=True))]
        best = [c for _, _, c in sorted((t for t in scored if t[0] >= MIN_FIT), reverse=True)]
        best = best[: max(k, 0)]
        titles = self.nearest_liked(best)
        return [
            (paper, f"like: {title}") for paper, title in zip(best, titles, strict=True) if title
        ]

    def order(self, ids: Sequence[str]) -> list[str]:
        """`ids` (a section's papers, best fit to the section first) ordered by their fit
        to both: the section's by rank (1 for the first, down to 1/n), the reader's by
        score relative to the best in the section; ties keep the section's order."""
        n = len(ids)
        if n < 2:
            return list(ids)
        scores = self.scores(ids)
        top = max(abs(s) for s in scores)
        if top == 0:
            return list(ids)
        combined = [
            (1 - pos / n) + READER_WEIGHT * (score / top) for pos, score in enumerate(scores)
        ]
        return [ids[i] for i in sorted(range(n), key=lambda i: (-combined[i], i))]


def suggest(
    reader_marks: Sequence[Mark],
    candidate_papers: Sequence[PaperText],
    k: int,
    rated_papers: Sequence[PaperText] = (),
    muted: Collection[str] = (),
) -> list[tuple[str, str]]:
    """The feedback part of one reader's "For you": the `k` candidates that fit their
    marks best, each with ``like: <title>``; [] without marks. `rated_papers`: the texts
    of the marked papers (those not among the candidates); `muted`: ids never suggested."""
    space = Space([*candidate_papers, *rated_papers])
    profile = space.profile(reader_marks)
    if profile is None:
        return []
    return profile.suggest([p[0] for p in candidate_papers], k, muted)


def order(profile: Profile | None, ids: Sequence[str]) -> list[str]:
    """A section's papers in the reader's order; without a profile, as they are."""
    return list(ids) if profile is None else profile.order(ids)
