"""A reader's profile from their "more / less like this" marks: what it suggests for
"For you" and how it orders the papers of their sections."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from digest.personal import profile
from digest.personal.profile import Space

EARLIER = [
    ("moe-1", "Sparse Mixture of Experts Routing", "We route tokens to experts with a router."),
    ("moe-2", "Load Balancing for Experts", "Balancing the load of the router across experts."),
    ("audio-1", "Neural Music Generation", "A model that generates music and audio from text."),
    ("bench-1", "A Benchmark of Reasoning", "We benchmark reasoning of language models."),
]  # fmt: skip
ISSUE = [
    ("c-bench", "Another Reasoning Benchmark", "A benchmark that tests reasoning of models."),
    ("c-audio", "Singing Voice Synthesis", "Audio and music synthesis of singing voices."),
    ("c-moe", "Experts Routing at Scale", "A router that sends tokens to experts at scale."),
    ("c-vision", "Image Segmentation", "We segment images with a vision transformer."),
]  # fmt: skip
IDS = [p[0] for p in ISSUE]


def test_a_more_brings_its_kind_first_with_the_liked_title() -> None:
    marks = [("moe-1", 1), ("moe-2", 1), ("bench-1", -1)]
    picks = profile.suggest(marks, ISSUE, 2, rated_papers=EARLIER)
    assert picks[0] == ("c-moe", "like: Sparse Mixture of Experts Routing")
    assert all(note.startswith("like: ") for _, note in picks)
    # liking music instead changes what comes first, and what it is "like"
    picks = profile.suggest([("audio-1", 1)], ISSUE, 1, rated_papers=EARLIER)
    assert picks == [("c-audio", "like: Neural Music Generation")]


def test_no_marks_no_suggestions_and_todays_order() -> None:
    assert profile.suggest([], ISSUE, 5, rated_papers=EARLIER) == []
    space = Space([*ISSUE, *EARLIER])
    assert space.profile([]) is None
    assert profile.order(None, IDS) == IDS
    # marks on papers the space does not hold make no profile either
    assert space.profile([("unknown", 1)]) is None


def test_a_muted_or_marked_less_paper_is_never_suggested() -> None:
    space = Space([*ISSUE, *EARLIER])
    liked = space.profile([("moe-1", 1), ("bench-1", 1), ("audio-1", 1)])
    assert liked is not None
    every = [p for p, _ in liked.suggest(IDS, 10)]
    assert {"c-moe", "c-bench", "c-audio"} <= set(every)
    muted = [p for p, _ in liked.suggest(IDS, 10, muted={"c-moe"})]
    assert "c-moe" not in muted and "c-bench" in muted
    # a paper of the issue marked "less" (from the web copy) is never suggested
    less = space.profile([("moe-1", 1), ("bench-1", 1), ("c-bench", -1)])
    assert less is not None and "c-bench" not in [p for p, _ in less.suggest(IDS, 10)]
    # a paper that does not fit at all (no shared word) is not suggested to fill k
    assert "c-vision" not in every


def test_order_puts_what_fits_the_reader_up_within_the_section() -> None:
    space = Space([*ISSUE, *EARLIER])
    reader = space.profile([("audio-1", 1), ("bench-1", -1)])
    ordered = profile.order(reader, IDS)
    assert sorted(ordered) == sorted(IDS)
    assert ordered.index("c-audio") < IDS.index("c-audio")
    assert ordered.index("c-bench") == len(IDS) - 1  # like what they marked "less": last


def test_many_readers_at_once_match_one_at_a_time() -> None:
    space = Space([*ISSUE, *EARLIER])
    readers = [[("moe-1", 1)], [], [("audio-1", 1), ("moe-2", -1)], [("nope", 1)]]
    together = space.profiles(readers)
    assert [p is None for p in together] == [False, True, False, True]
    for marks, p in zip(readers, together, strict=True):
        alone = space.profile(marks)
        if p is None:
            assert alone is None
        else:
            assert alone is not None and p.suggest(IDS, 3) == alone.suggest(IDS, 3)


@given(
    st.lists(st.tuples(st.sampled_from([p[0] for p in EARLIER + ISSUE]), st.sampled_from([1, -1]))),
    st.sets(st.sampled_from(IDS)),
)
def test_suggestions_never_break_the_rules(marks: list[tuple[str, int]], muted: set[str]) -> None:
    marked = dict(marks)
    picks = profile.suggest(marks, ISSUE, 3, rated_papers=EARLIER, muted=muted)
    assert len(picks) <= 3 and len({p for p, _ in picks}) == len(picks)
    for paper, note in picks:
        assert paper in IDS and paper not in muted and marked.get(paper) != -1
        liked_titles = {t for k, t, _ in EARLIER + ISSUE if marked.get(k) == 1}
        assert note.removeprefix("like: ") in liked_titles
