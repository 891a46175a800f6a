"""Readable names for automatic sections: candidate phrases taken verbatim from titles.

A candidate is a run of one to three words inside one part of a title (titles are cut at
``:``, ``;``, ``,``, ``?``, ``|``, brackets and dashes), where a hyphenated compound such as
"Text-to-Image" or "Mixture-of-Experts" counts as one word. A candidate may not start or
end with a function word ("of", "for"…) or a word that names no topic ("model",
"framework", "large", "towards", "improving"…), and a lone word must say something on its
own ("learning", "generation", "data" do not). Phrases are compared by a key that folds
case, hyphens and plurals, so "Mixture-of-Experts" and "mixture of experts" are one
candidate; the name shown is the spelling most titles use, in sentence case, keeping
acronyms ("MoE", "LLMs", "T2I") and words the abstracts only ever capitalise ("Bayesian").
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from digest.ingest.keys import fold_word as fold

__all__ = ["PhraseIndex", "display_name", "fold", "title_phrases"]

_SPLIT = re.compile(r"[:;,.?!|()\[\]{}\"“”–—]|\s-+\s|--+")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’]*(?:-[A-Za-z0-9][A-Za-z0-9'’]*)*")


def word_set(text: str) -> frozenset[str]:
    """The words of a text block, as a set."""
    return frozenset(text.split())


# Function words: never the first or last word of a name.
FUNCTION_WORDS = word_set(
    """
    a about across after again against all also among an and any are around as at be been
    before between beyond both by can could did do does during each for from here how if in
    into is it its just many may might more most much no nor not of on only onto or our over
    per shall should so than that the their then there these they this those through to too
    toward towards under up upon us using versus very via vs we what when where which while
    who whom whose why will with within without would yet you your
    """
)

# Words that name no topic: never the first or last word of a name.
EDGE_WORDS = word_set(
    """
    accelerating addressing advancing analysis application applications approach approaches
    assessing augmenting aware balancing based beats benchmark benchmarking benchmarks best
    better boosting building case challenge challenges co-design coarse comprehensive deep
    driven dynamic effective efficient embrace embracing enables end enhancing evaluating
    expanding exploring factorizing fast finding findings fine fine-grained first framework
    frameworks free gain gains general generate generating good grained growing guide
    harnessing high improve improved improving investigating large learn learned learns
    lesson lessons leveraging long made make makes matter matters measuring method methods
    model modeling models multi natural need neural new next-generation novel one open
    paradigm paradigms part perspective potential potentials quality quantifying really
    recipe recipes refactorizing revisiting robust role roles scalable scaling secret
    selecting short simple single small sota state-of-the-art step steps strategies strategy
    studies study survey system systematic systems technique techniques three toward
    training-free trend trends two understanding unified unifying unleashing unlocking using
    versatile via vs way ways work works
    """
)

# Words that may be part of a name but are no name on their own.
WEAK_WORDS = word_set(
    """
    adaptation agent agents ai alignment attention composition compositional
    compositionality concept concepts control data design detection diffusion evaluation
    feature features feedback foundation generalization generation generative graph graphs
    human image images inference instance instances knowledge language languages layer
    layers learning level llm modal multimodal network networks optimization performance
    prior prompt prompts reasoning representation representations sample samples scale
    search semantic source space spaces structured task tasks text token tokens training
    transformer transformers tuning understanding visual
    """
)

# The only function words a name may hold inside ("Mixture of experts").
INNER_WORDS = frozenset({"of", "and", "for", "in", "on", "to", "with"})

# A lone adjective ("Synthetic", "Efficient") names no topic.
_ADJECTIVE_ENDINGS = ("etic", "antic", "istic", "ific", "ical", "ive", "ous", "ful", "able", "ible")


@dataclass(frozen=True)
class _Word:
    """What a title word may be in a name, worked out once per spelling."""

    key: tuple[str, ...]  # folded, hyphen parts apart: "Text-to-Image" -> (text, to, image)
    starts: bool  # may open a name of several words
    ends: bool  # may close a name
    alone: bool  # may be a name on its own
    weak: bool
    function: bool
    inner: bool  # a function word allowed inside a name


@lru_cache(maxsize=100_000)
def _word(text: str) -> _Word:
    lower = text.lower()
    folded = fold(lower)
    usable = "'" not in lower and "’" not in lower
    function = lower in FUNCTION_WORDS
    parts = [p for p in lower.split("-") if p]
    edge = function or lower in EDGE_WORDS or folded in EDGE_WORDS
    edge = edge or all(p in EDGE_WORDS or p in FUNCTION_WORDS for p in parts)  # "High-quality"
    weak = folded in WEAK_WORDS
    verb = "-" not in lower and lower.endswith("ing") and not weak
    ends = usable and not edge and not lower.endswith(_ADJECTIVE_ENDINGS)
    return _Word(
        key=tuple(fold(part) for part in parts),
        starts=usable and not edge and not verb and not lower.isdigit(),
        ends=ends,
        alone=ends and len(lower) >= 3 and not weak and not lower.isdigit(),
        weak=weak,
        function=function,
        inner=lower in INNER_WORDS,
    )


def _acceptable(run: Sequence[_Word]) -> bool:
    """First and last words that may frame a name; inside only "of", "and"… and then
    not a weak last word ("Gap in language"); a first word in -ing reads as a verb
    ("Unlocking compositionality"); a name never ends in an adjective ("Synthetic")."""
    if len(run) == 1:
        return run[0].alone
    if not (run[0].starts and run[-1].ends):
        return False
    inner = [w for w in run[1:-1] if w.function]
    return not inner or (all(w.inner for w in inner) and not run[-1].weak)


def title_phrases(title: str, longest: int = 3) -> list[tuple[tuple[str, ...], str]]:
    """(key, surface) of every acceptable 1..``longest``-word phrase of a title."""
    found: list[tuple[tuple[str, ...], str]] = []
    for part in _SPLIT.split(title):
        texts = _WORD.findall(part)
        words = [_word(t) for t in texts]
        for start in range(len(words)):
            for end in range(start + 1, min(start + longest, len(words)) + 1):
                run = words[start:end]
                if _acceptable(run):
                    key = tuple(k for w in run for k in w.key)
                    found.append((key, " ".join(texts[start:end])))
    return found


@dataclass
class PhraseIndex:
    """Which titles hold which candidate phrase, and how each phrase is spelled."""

    docs: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    spellings: dict[tuple[str, ...], Counter[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, titles: Sequence[str], min_docs: int) -> PhraseIndex:
        docs: dict[tuple[str, ...], set[int]] = defaultdict(set)
        spellings: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
        for i, title in enumerate(titles):
            for key, surface in title_phrases(title):
                docs[key].add(i)
                spellings[key][surface] += 1
        kept = sorted(k for k, d in docs.items() if len(d) >= min_docs)
        return cls({k: sorted(docs[k]) for k in kept}, {k: spellings[k] for k in kept})

    def spelling(self, key: tuple[str, ...], members: Iterable[int], titles: Sequence[str]) -> str:
        """The spelling used by most member titles (ties: alphabetical)."""
        counts: Counter[str] = Counter()
        wanted = set(members)
        for surface in self.spellings.get(key, Counter()):
            for i in self.docs.get(key, []):
                if i in wanted and _contains(titles[i], surface):
                    counts[surface] += 1
        if not counts:
            counts = self.spellings[key]
        return min(counts, key=lambda s: (-counts[s], s))


def _contains(title: str, surface: str) -> bool:
    return re.search(r"(?<!\w)" + re.escape(surface) + r"(?!\w)", title) is not None


class LowercaseIn(Container[str]):
    """``word in LowercaseIn(texts)``: do the texts ever write ``word`` in lowercase (a
    common word, not a name)? Each word is looked up once, lazily."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._text = "\n".join(texts)
        self._seen: dict[str, bool] = {}

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        if word not in self._seen:
            pattern = r"(?<![A-Za-z0-9])" + re.escape(word) + r"(?![A-Za-z0-9])"
            self._seen[word] = re.search(pattern, self._text) is not None
        return self._seen[word]


def _case_word(word: str, common: Container[str], first: bool) -> str:
    parts = word.split("-")
    cased = []
    for j, part in enumerate(parts):
        lower = part.lower()
        is_title_case = part[:1].isupper() and part[1:].islower()
        all_caps_word = part.isupper() and len(part) > 4 and lower in common
        if (is_title_case or all_caps_word) and lower in common:
            part = lower
        if first and j == 0:
            part = part[:1].upper() + part[1:]
        cased.append(part)
    return "-".join(cased)


def display_name(surface: str, common: Container[str]) -> str:
    """Sentence case, keeping acronyms and proper names: "Mixture of Experts" ->
    "Mixture of experts", "Text-to-Image" -> "Text-to-image", "MoE Routing" -> "MoE routing"."""
    words = surface.split()
    return " ".join(_case_word(w, common, i == 0) for i, w in enumerate(words))
