"""Sections: cutting the pending papers into named sections — configured themes first
(assign), then the research areas of a shipped, replaceable vocabulary (areas: the tree in
areas.toml; match: BM25 on area terms, neighbour smoothing, fold-up and split), topics
discovered among what fits no area (discover) with readable names (naming), and one line
per paper that says what it does (summary).

May import: `digest.config`, `digest.errors`, `digest.urls` (slugs), `digest.ingest`;
numpy/scikit-learn load lazily.
"""
