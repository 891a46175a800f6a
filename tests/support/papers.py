"""Papers for theme tests and benchmarks: the bundled sample dumps, and as many more as
wanted, made by recombining their titles and abstracts (deterministic for a seed)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cache

from digest.ingest.keys import paper_key
from tests.support.dumps import SAMPLES, parse_dump


@dataclass(frozen=True)
class Paper:
    title: str
    abstract: str
    sightings: int = 1
    position: int = 0


@cache
def samples() -> tuple[Paper, ...]:
    """The distinct papers of the sample dumps, with their sightings and best position."""
    best: dict[str, Paper] = {}
    for path in sorted(SAMPLES.glob("*.txt")):
        for p in parse_dump(str(path)).papers:
            key = paper_key(p.title)
            old = best.get(key)
            seen = old.sightings + 1 if old else 1
            pos = min(old.position, p.position) if old else p.position
            best[key] = Paper(
                old.title if old else p.title, old.abstract if old else p.abstract, seen, pos
            )
    return tuple(best.values())


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def generate(n: int, seed: int = 0) -> list[Paper]:
    """``n`` papers: each takes the title of one sample with the subtitle of another of
    the same listing neighbourhood, and mixes their abstracts' sentences."""
    base = samples()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = base[rng.randrange(len(base))]
        b = base[(base.index(a) + rng.randrange(1, 6)) % len(base)]
        head = a.title.split(":")[0]
        tail = b.title.split(":")[-1].strip()
        title = f"{head}: {tail} ({i})" if head != tail else f"{head} ({i})"
        sa, sb = _sentences(a.abstract), _sentences(b.abstract)
        abstract = " ".join(sa[: max(1, len(sa) // 2 + 1)] + sb[len(sb) // 2 :])
        out.append(Paper(title, abstract, 1 + rng.randrange(3), rng.randrange(60)))
    return out
