"""Paper keys: the one place where a title is folded into the identity of a paper.

The key folds what does not change meaning and keeps what does:

- folded: case (casefold), width and compatibility forms and accents as NFKC composes
  them (``Ｍｏｅ`` = ``MoE``, ``ﬁ`` = ``fi``, ``e`` + combining acute = ``é``), invisible
  characters (zero-width space and joiners, soft hyphen, word joiner, BOM, variation
  selectors), runs of spacing, and punctuation (dashes, colons, quotes, brackets…);
- kept: letters and digits, symbols (``+``, ``=``, ``$``…), and ``#`` (``♯`` is read as
  ``#``), so "C Compilers" and "C# Compilers" stay two papers.

Sections compare keywords and title words with the same fold (``fold_word`` adds what a
word needs on top: apostrophes dropped, a plural "s" removed).
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = ["different_abstracts", "fold_word", "paper_key"]

KEPT = frozenset("#")  # punctuation that changes what a title means
_SAME = str.maketrans({"♯": "#"})  # the music sharp often stands for "#" (C♯)
_INVISIBLE = frozenset({"\u034f", *map(chr, range(0xFE00, 0xFE10))})  # CGJ, variation sel.


@functools.lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """One character of a key: separators become a space, invisible characters vanish.
    (Cached: titles reuse few characters, and this runs once per character.)"""
    if char in KEPT:
        return char
    category = unicodedata.category(char)
    if category == "Cf" or char in _INVISIBLE:
        return ""
    if category[0] in "PZ" or category == "Cc" or char.isspace():
        return " "
    return char


def _step(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = unicodedata.normalize("NFKC", text).translate(_SAME)
    return " ".join("".join(map(_fold_char, text)).split())


def paper_key(title: str) -> str:
    """Stable identity of a paper (see the module docstring); "" for a title of only
    punctuation."""
    key = _step(title)
    for _ in range(4):  # normalising can expose new foldable text; stop at the fixpoint
        again = _step(key)
        if again == key:
            break
        key = again
    return key


@functools.lru_cache(maxsize=100_000)
def fold_word(token: str) -> str:
    """A word as sections compare it: folded like a key (its hyphens kept: "Text-to-Image"
    -> "text-to-image"), apostrophes dropped, a plural "s" removed ("LLMs" -> "llm",
    "Transformer's" -> "transformer")."""
    bare = token.replace("'", "").replace("’", "")
    word = "-".join(paper_key(part) for part in bare.split("-"))
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ics")):
        word = word[:-1]
    return word


def different_abstracts(a: str, b: str) -> bool:
    """Whether two abstracts under one key say different things (spacing, case and
    punctuation aside). A missing abstract differs from none: the title alone is kept."""
    return bool(a and b) and paper_key(a) != paper_key(b)
