"""Readers' profiles ("more / less like this", digest/personal/profile.py): how long they
take to build, and how good a centroid is next to a small linear model.

1. Speed: 10,000 readers of whom a tenth have 20 marks each (on 2,000 earlier papers),
   an issue of 200 papers: the TF-IDF of the issue and the rated papers (once), every
   reader's profile, each one's 5 suggestions and the order of one section of 40 papers.
   Printed per thousand readers next to the baseline from the same run: the TF-IDF of
   the issue alone. Target: under a second per thousand readers.
2. Choice: readers simulated as liking one area of the sample issue (10 "more" on its
   papers, 10 "less" on others, marked on one half of the papers; suggestions from the
   other half): the share of their top 5 suggestions in their area, for the Rocchio
   centroid (BETA 0, 0.25, 0.5, 1; ranking only, no MIN_FIT) and per-reader logistic
   regression, with the time per reader.

    python tests/bench/bench_profiles.py
    pytest tests/bench -o python_files='bench_*.py' -s -k profiles
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

from digest.ingest.keys import paper_key
from digest.personal import profile
from digest.personal.profile import Space
from tests.support.papers import generate

READERS, WITH_MARKS, MARKS, ISSUE, EARLIER = 10_000, 1_000, 20, 200, 2_000


def _texts(seed: int, n: int) -> list[tuple[str, str, str]]:
    return [(paper_key(p.title), p.title, p.abstract) for p in generate(n, seed)]


def build_profiles() -> dict[str, float]:
    issue, earlier = _texts(1, ISSUE), _texts(2, EARLIER)
    rng = random.Random(3)
    readers: list[list[tuple[str, int]]] = [[] for _ in range(READERS)]
    for r in rng.sample(range(READERS), WITH_MARKS):
        readers[r] = [(p[0], rng.choice((1, 1, -1))) for p in rng.sample(earlier, MARKS)]
    ids = [p[0] for p in issue]
    section = ids[:40]

    Space(issue[:10])  # imports and warms scikit-learn: neither run pays for it
    start = time.perf_counter()
    Space(issue)
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    rated = {k for marks in readers for k, _ in marks}
    space = Space([*issue, *(p for p in earlier if p[0] in rated)])
    profiles = space.profiles(readers)
    picks = 0
    for p in profiles:
        if p is not None:
            picks += len(p.suggest(ids, 5))
            p.order(section)
    total = time.perf_counter() - start
    assert sum(p is not None for p in profiles) == WITH_MARKS and picks > 0
    return {"per_thousand": total / READERS * 1000, "baseline": baseline, "total": total}


def choose(trials: int = 200) -> dict[str, tuple[float, float]]:
    """name -> (share of the top 5 in the reader's area, ms per reader)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from tests.support.papers import samples

    base = samples()
    # areas: the sample issue cut into sections as `digest` cuts it
    from digest.config import Settings
    from digest.sections.areas import load_vocabulary
    from digest.sections.assign import assign

    class P:
        def __init__(self, title: str, abstract: str) -> None:
            self.title, self.abstract, self.key = title, abstract, paper_key(title)
            self.links, self.sightings, self.position = (), 1, 0

    sections = assign([P(p.title, p.abstract) for p in base], Settings().themes,
                      vocabulary=load_vocabulary(""))  # fmt: skip
    papers = [
        (p.key, p.title, p.abstract, s.area_of(k) or s.slug)
        for s in sections
        for k, p in enumerate(s.papers)
    ]
    big = [a for a, n in Counter(p[3] for p in papers).items() if n >= 12]
    space = Space([p[:3] for p in papers])

    def centroid(beta: float) -> Callable[[list[tuple[str, int]], list[str]], list[str]]:
        def run(marks: list[tuple[str, int]], cands: list[str]) -> list[str]:
            # the ranking is compared: no MIN_FIT here (the model has none either)
            old = profile.BETA, profile.MIN_FIT
            profile.BETA, profile.MIN_FIT = beta, float("-inf")
            try:
                p = space.profiles([marks])[0]
                return [] if p is None else [c for c, _ in p.suggest(cands, 5)]
            finally:
                profile.BETA, profile.MIN_FIT = old

        return run

    def logreg(marks: list[tuple[str, int]], cands: list[str]) -> list[str]:
        assert space.matrix is not None
        x = space.matrix[[space.row[m] for m, _ in marks]]
        model = LogisticRegression(C=10).fit(x, [v for _, v in marks])
        s = model.decision_function(space.matrix[[space.row[c] for c in cands]])
        return [cands[i] for i in np.argsort(-s)[:5]]

    ways = {"centroid BETA=0": centroid(0.0), "centroid BETA=0.25": centroid(0.25),
            "centroid BETA=0.5": centroid(0.5),
            "centroid BETA=1": centroid(1.0), "logistic regression": logreg}  # fmt: skip
    hits: dict[str, list[float]] = {k: [] for k in ways}
    spent = dict.fromkeys(ways, 0.0)
    rng = random.Random(1)
    for _ in range(trials):
        area = rng.choice(big)
        order = list(range(len(papers)))
        rng.shuffle(order)
        half = set(order[: len(order) // 2])
        mine = [papers[i][0] for i in order if i in half and papers[i][3] == area]
        other = [papers[i][0] for i in order if i in half and papers[i][3] != area]
        truth = {papers[i][0] for i in order if i not in half and papers[i][3] == area}
        if len(mine) < 4 or not truth:
            continue
        marks = [(m, 1) for m in mine[:10]] + [(o, -1) for o in other[:10]]
        cands = [papers[i][0] for i in order if i not in half]
        k = min(5, len(truth))
        for name, way in ways.items():
            start = time.perf_counter()
            got = way(marks, cands)[:k]
            spent[name] += time.perf_counter() - start
            hits[name].append(sum(g in truth for g in got) / k)
    return {n: (float(np.mean(h)), spent[n] / len(h) * 1000) for n, h in hits.items()}


def report() -> dict[str, float]:
    speed = build_profiles()
    print(
        f"\nprofiles of {READERS:,} readers ({WITH_MARKS:,} with {MARKS} marks), issue of "
        f"{ISSUE}: {speed['per_thousand']:.3f} s per thousand readers "
        f"({speed['total']:.2f} s in all); baseline, the issue's TF-IDF once: "
        f"{speed['baseline']:.3f} s"
    )
    for name, (share, ms) in choose().items():
        print(f"  {name:20s} top-5 in the reader's area {share:.3f}, {ms:.2f} ms per reader")
    return speed


def test_profiles() -> None:
    speed = report()
    assert speed["per_thousand"] < 1.0


if __name__ == "__main__":
    report()
