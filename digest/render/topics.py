"""What the subscribe and preferences pages offer a reader: the topics as an editor's table
of contents — the broad areas of the vocabulary, each with the sections below it — plus the
configured themes that no area already names. Each name appears once."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from digest.sections.areas import Vocabulary

__all__ = ["Topic", "TopicGroup", "chosen_topics", "topic_groups"]


@dataclass(frozen=True)
class Topic:
    slug: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class TopicGroup:
    """A broad area: ticking it takes every topic inside it."""

    slug: str
    name: str
    description: str
    topics: tuple[Topic, ...]  # the sections below it, in the vocabulary's order


def topic_groups(vocabulary: Vocabulary, themes: Sequence[tuple[str, str]]) -> list[TopicGroup]:
    """The configured themes no area names (each a group of its own, first), then one group
    per top-level area with the sections below it."""
    seen: set[str] = set()

    def new(name: str) -> bool:
        key = " ".join(name.split()).casefold()
        if key in seen:
            return False
        seen.add(key)
        return True

    groups: list[TopicGroup] = []
    tops = [a for a in vocabulary if not a.parent or a.parent not in vocabulary.by_slug]
    for a in tops:
        new(a.name)
    below: dict[str, list[Topic]] = {a.slug: [] for a in tops}
    for section in vocabulary.sections:
        top = vocabulary.top(section.slug)
        if section.slug != top and top in below and new(section.name):
            below[top].append(Topic(section.slug, section.name, section.description))
    shown = {*below, *(t.slug for topics in below.values() for t in topics)}
    for slug, name in themes:
        if slug not in shown and new(name):
            groups.append(TopicGroup(slug, name, "", ()))
    # a group with one topic inside is that topic: no "only some of them" to open
    groups += [
        TopicGroup(
            a.slug, a.name, a.description, tuple(below[a.slug]) if len(below[a.slug]) > 1 else ()
        )
        for a in tops
    ]
    return groups


def chosen_topics(vocabulary: Vocabulary, slugs: Collection[str]) -> set[str]:
    """A reader's stored topics as the pages' slugs (an old slug ticks the topic that
    replaced it)."""
    return {vocabulary.resolve(s) or s for s in slugs}
