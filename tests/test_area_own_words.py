"""A paper's own words come first: its neighbours choose between the areas it names and
fill in for a paper that names none, but never outvote what it says itself."""

from __future__ import annotations

from digest.sections.assign import Section, assign
from tests.support.papers import Paper, generate

# Text-to-image papers that share most of their words with the paper under test.
PICTURES = [
    Paper(
        f"Compositional text-to-image generation with syllable prompts ({i})",
        "We learn to generate images from compositional prompts built of syllables, with a "
        f"diffusion model; stable diffusion and sdxl baselines, variant {i}.",
    )
    for i in range(12)
]


def _own_area(sections: list[Section[Paper]], title: str) -> tuple[str, str]:
    """(the paper's own area, the slug of the section it prints under)."""
    for s in sections:
        for k, p in enumerate(s.papers):
            if p.title == title:
                return s.area_of(k), s.slug
    raise AssertionError(f"{title!r} is in no section")


def test_a_title_that_names_an_area_is_not_outvoted_by_neighbours() -> None:
    """A poetry paper among text-to-image papers that share its words stays with text
    generation: its title names poetry (red before: it printed under text-to-image)."""
    poems = Paper(
        "Neural poetry: learning to generate poems with syllable prompts",
        "We learn to generate poetry from prompts built of syllables.",
    )
    sections = assign([poems, *PICTURES, *generate(30)], ())
    assert _own_area(sections, poems.title) == ("text-generation", "text-generation")


def test_a_paper_that_names_no_area_takes_its_neighbours_area() -> None:
    """Neighbours still fill in: a paper whose words name no area lands with the papers
    it is most like."""
    bare = Paper(
        "Syllable prompts for pictures",
        "We learn to generate pictures from prompts built of syllables.",
    )
    sections = assign([bare, *PICTURES, *generate(30)], ())
    assert _own_area(sections, bare.title)[1] == "text-to-image"


def test_an_area_named_in_passing_beats_one_only_the_neighbours_name() -> None:
    """A paper that names an area once in its abstract, and no area firmly, takes that
    area rather than its neighbours' (red before: text-to-image)."""
    theory = Paper(
        "Syllable prompts for pictures, in theory",
        "We learn to generate pictures from prompts built of syllables, and prove a "
        "generalization bound.",
    )
    sections = assign([theory, *PICTURES, *generate(30)], ())
    assert _own_area(sections, theory.title)[1] == "optimization"


def test_naming_an_area_admits_the_narrower_areas_its_neighbours_point_to() -> None:
    """A paper that names fine-tuning (post-training) among preference-learning papers
    gets their narrower area, alignment, which prints under the same section."""
    preference = [
        Paper(
            f"Direct preference optimization with human feedback ({i})",
            "We align chat models with the answers annotators choose: rlhf, dpo and a reward "
            f"model trained on their choices, run {i}.",
        )
        for i in range(12)
    ]
    tuned = Paper(
        "Fine-tuning chat models to align with the answers annotators choose",
        "We study fine-tuning of chat models to align them with the answers annotators choose.",
    )
    sections = assign([tuned, *preference, *generate(30)], ())
    assert _own_area(sections, tuned.title) == ("alignment", "post-training")
