"""Sentences are split one way everywhere: the one-line summary of a section and the
first sentence shown on a web copy agree on where a sentence ends."""

from __future__ import annotations

from digest.render.reading import first_sentence
from digest.sections.summary import sentences

ABSTRACT = (
    "We compare models in Sec. 3 of the paper, resp. their variants. Results improve by 4 points."
)


def test_the_web_copy_and_the_summary_end_the_first_sentence_at_the_same_place() -> None:
    first = "We compare models in Sec. 3 of the paper, resp. their variants."
    assert sentences(ABSTRACT)[0] == first
    assert first_sentence(ABSTRACT) == first


def test_a_sentence_glued_to_the_next_by_a_lost_line_break_still_ends() -> None:
    assert first_sentence("Models learn concepts.To tackle this we scale.") == (
        "Models learn concepts."
    )
