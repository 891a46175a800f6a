"""One line per paper that says what it does: the abstract's contribution sentence.

Extractive, no model: the abstract is split into sentences and each is scored; the best
(ties: the earlier) wins. A sentence that states the contribution ("we introduce / propose /
present …", "this paper proposes …") scores highest, a finding ("we show / find …") next,
"our method / the proposed framework …" after that. A contribution sentence that only names
a thing ("We propose the Double-Layer MoE RM (DMoERM).") scores low, and the sentence after
it that says what the named thing does ("DMoERM first divides …") high; a background
sentence ("Recent advances in …", "However, …") scores below a plain one. A leading
connective ("To this end, ", "In this paper, ") is dropped, LaTeX and URLs are removed, and a
long sentence is cut at a clause ("…, which …", ";", ":") or before a list, else at a word,
with "…".
"""

from __future__ import annotations

import re

from digest.ingest.links import tidy_text
from digest.text import sentences

__all__ = ["MAX_CHARS", "sentences", "summarise"]

MAX_CHARS = 220

_VERBS_MADE = (
    "introduce|introduces|propose|proposes|present|presents|develop|develops|design|designs|"
    "build|builds|construct|constructs|release|releases|curate|curates|create|creates|"
    "contribute|contributes|offer|offers|describe|describes|formulate|formulates|"
    "devise|devises|unveil|unveils|establish|establishes|provide|provides|train|trains"
)
_VERBS_FOUND = (
    "show|shows|find|finds|demonstrate|demonstrates|reveal|reveals|prove|proves|"
    "study|studies|investigate|investigates|explore|explores|analyze|analyzes|analyse|"
    "examine|examines|argue|argues|identify|identifies|evaluate|evaluates"
)
_SUBJECT = r"(?:we|this (?:paper|work|study|article|report|survey)|our (?:work|paper|survey))"
_ADVERB = (
    r"(?:\s+(?:first|also|further|then|here|thus|therefore|instead|newly|systematically|"
    r"briefly|comprehensively|formally))?"
)
_MADE = re.compile(rf"\b{_SUBJECT}{_ADVERB}\s+(?:{_VERBS_MADE})\b", re.I)
_FOUND = re.compile(rf"\b{_SUBJECT}{_ADVERB}\s+(?:{_VERBS_FOUND})\b", re.I)
_HERE = re.compile(
    r"^(?:in this (?:paper|work|study|article|report|survey)|here"
    r"|in our (?:paper|work|survey))\s*,?\s+we\b"
    r"|^this (?:paper|work|study|article|report|survey)\s+\w+s\b",
    re.I,
)
_NAMED = re.compile(r"^(?:we present|introducing|meet)\b", re.I)
_NAMED_NEW = re.compile(r"\bis (?:a|an) (?:novel|new)\b", re.I)

_LEAD = re.compile(
    r"^(?:(?:to (?:this end|address (?:this|these)(?: \w+)?|tackle (?:this|these)(?: \w+)?|"
    r"fill this gap|bridge this gap|overcome (?:this|these)(?: \w+)?)|in this (?:paper|work|"
    r"study|article|report)|here|specifically|therefore|thus|accordingly|consequently|"
    r"motivated by (?:this|these)(?: \w+)?|in response|in contrast|instead|finally|"
    r"to (?:do so|that end)),\s+)+",
    re.I,
)
_CLAUSE = re.compile(r"^[^,;:()]{1,90},\s+(?=we\s)", re.I)  # "Inspired by this, we …"
_URL = re.compile(r"\(?\s*(?:https?://|www\.)\S+")
_MATH = re.compile(r"\$[^$]*\$")
_COMMAND = re.compile(r"\\[A-Za-z]+\*?")
_BRACES = re.compile(r"[{}\\^_~$]")


_SPACE_BEFORE = re.compile(r"\s+([,.;:!?)])")
_EMPTY_PARENS = re.compile(r"\(\s*\)")


def _plain(sentence: str) -> str:
    """A sentence as plain text: LaTeX, math and URLs removed, spaces tidied. (Each pass
    runs only when the text holds the character it needs: most sentences have none.)"""
    text = sentence
    if "{" in text or "\\" in text or "~" in text:
        text = tidy_text(text)
    if "http" in text or "www." in text:
        text = _URL.sub("", text)
    if "$" in text:
        text = _MATH.sub(lambda m: _BRACES.sub("", _COMMAND.sub("", m.group(0))).strip(), text)
    if "\\" in text:
        text = _COMMAND.sub("", text)
    text = _BRACES.sub("", text)
    text = _SPACE_BEFORE.sub(r"\1", text)
    if "(" in text:
        text = _EMPTY_PARENS.sub("", text)
    return " ".join(text.split())


_CLAUSE_BREAK = re.compile(
    r"\s*(?:;|:|\s[—–-]\s|\s\(|,(?=\s(?:which|where|while|whereas|allowing|enabling|"
    r"achieving|leading|resulting|thereby|making|yielding|outperforming|improving|reducing|"
    r"demonstrating|showing|surpassing|so that|but|and (?:we|thus|then|it|our|show|achieve)"
    r")\b))"
)
_LIST_INTRO = re.compile(r"\s(?:including|such as|like|across|spanning|covering|e\.g\.)\s")
_MIN_KEPT = 0.45  # a clause cut keeps at least this share of the limit


def _trim(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters: at the last clause boundary (or before a list)
    that keeps enough of it, else at a word; "…" marks the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    floor = int(_MIN_KEPT * limit)
    clauses = [m.start() for m in _CLAUSE_BREAK.finditer(cut) if m.start() >= floor]
    if clauses:
        return cut[: clauses[-1]].rstrip(" ,;:-–—(") + "…"
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    tail = cut[floor:]
    if tail.count(",") >= 2:  # in the middle of a list: cut before it starts
        intro = [m.start() for m in _LIST_INTRO.finditer(cut) if floor <= m.start()]
        first_comma = floor + tail.index(",")
        intro = [i for i in intro if i < first_comma]
        if intro:
            cut = cut[: intro[-1]]
    return cut.rstrip(" ,;:-–—(") + "…"


_OURS = re.compile(
    r"^(?:our|the proposed|this|the resulting)\s+(?:\w+\s+)?(?:method|approach|model|framework|"
    r"system|technique|algorithm|pipeline|architecture|benchmark|dataset)\b",
    re.I,
)
_BACKGROUND = re.compile(
    r"^(?:recent|recently|in recent years|despite|however|while|although|though|existing|"
    r"current|traditional|conventional|prior|previous|with the|as |large language models "
    r"\(?llms\)? (?:have|are|has|show)|there (?:is|are|has been)|it is|one of)",
    re.I,
)
_DESCRIBES = re.compile(
    r",|;|:|\b(?:that|which|to|for|by|with|of|in|on|using|via|through|from|where|whose|"
    r"based|as|into|and|towards?)\b",
    re.I,
)


def _names_only(part: str, verb: re.Match[str]) -> bool:
    """Whether a contribution sentence only names what it contributes ("We propose the
    Double-Layer MoE RM (DMoERM).") without saying what it is or does."""
    rest = re.sub(r"\([^()]*\)", " ", part[verb.end() :]).strip(" .")
    return len(rest.split()) <= 10 and not _DESCRIBES.search(rest)


def _named(part: str) -> set[str]:
    """The capitalised names (acronyms, model names) in a sentence."""
    return {w for w in re.findall(r"[A-Za-z][\w-]*", part) if re.search(r"[A-Z].*[A-Z]|\d", w)}


_BY_MAKING = re.compile(
    rf"\b{_SUBJECT}\s+\w+.*\bby (?:introducing|proposing|presenting|developing|designing|"
    r"building|constructing|releasing|creating)\b",
    re.I,
)


_CLAIM = re.compile(
    rf"\b{_SUBJECT}{_ADVERB}\s+(?:(?P<made>{_VERBS_MADE})|(?:{_VERBS_FOUND}))\b", re.I
)  # _MADE and _FOUND in one pass: no verb is an adverb, so no position matches both


def _claims(part: str) -> tuple[re.Match[str] | None, bool]:
    """The first "we introduce …" (as ``_MADE.search`` finds it), and whether the sentence
    has a "we show …" (``_FOUND``)."""
    made, found = None, False
    for m in _CLAIM.finditer(part):
        if m.group("made") is None:
            found = True
        elif made is None:
            made = m
        if made and found:
            break
    return made, found


def _score(part: str, made: re.Match[str] | None, found: bool) -> float:
    folded = part.casefold()  # what re.I matches: a pattern's word is in here, or no match
    if made:
        score = 0.5 if _names_only(part, made) else 4.0
    elif "by " in folded and _BY_MAKING.search(part):  # "We tackle X by introducing Y, …"
        score = 4.0
    elif (
        _HERE.search(part) or _NAMED.search(part) or ("is a" in folded and _NAMED_NEW.search(part))
    ):
        score = 3.0
    elif found:
        score = 2.0
    elif _OURS.search(part):
        score = 1.0
    else:
        score = 0.0
    if _BACKGROUND.search(part):
        score -= 1.0
    return score


def _choose(parts: list[str]) -> str:
    claims = [_claims(p) for p in parts]
    scores = [_score(p, made, found) for p, (made, found) in zip(parts, claims, strict=True)]
    for k, part in enumerate(parts[:-1]):  # a name alone: the next sentence says what it is
        made = claims[k][0]
        if made and _names_only(part, made):
            first = re.match(r"[\w-]+", parts[k + 1])
            if first and first.group(0) in _named(part):
                scores[k + 1] = max(scores[k + 1], 3.5)
    best = max(range(len(parts)), key=lambda k: (scores[k], -k))
    return parts[best]


def summarise(abstract: str, limit: int = MAX_CHARS) -> str:
    """The sentence of ``abstract`` that states the contribution, as plain text of at most
    ``limit`` characters ("" for an empty abstract)."""
    parts = [p for p in (_plain(s) for s in sentences(abstract)) if len(p.split()) >= 3]
    if not parts:
        return _trim(_plain(abstract), limit)
    chosen = _CLAUSE.sub("", _LEAD.sub("", _choose(parts)).strip())
    if chosen and chosen[0].islower():
        chosen = chosen[0].upper() + chosen[1:]
    return _trim(chosen, limit)
