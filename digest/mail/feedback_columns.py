"""A subscriber's "more / less like this" marks in `subscribers export`: two columns after
the others, ``more`` and ``less``, each the paper keys the reader marked, ";"-separated
(a key never holds ";": keys fold punctuation to spaces). Import ignores them (it says
so): marks are made by the reader, never loaded from a file."""

from __future__ import annotations

from collections.abc import Iterable

from digest.state import feedback
from digest.state.handles import Tx

NAMES = ("more", "less")


def every_mark(tx: Tx) -> dict[int, list[tuple[str, int]]]:
    """Every subscriber's marks (those with any), by subscriber id."""
    return feedback.all_marks(tx)


def cells(marks: Iterable[tuple[str, int]]) -> tuple[str, str]:
    """The ``more`` and ``less`` cells of one subscriber."""
    marks = list(marks)
    more = ";".join(k for k, v in marks if v == feedback.MORE)
    less = ";".join(k for k, v in marks if v == feedback.LESS)
    return more, less
