"""Sections: cutting the pending papers into named sections — configured themes first
(assign), then each paper's own area in a shipped, replaceable vocabulary (areas: the tree
in areas.toml, which also says which section each area prints under; match: BM25 on area
terms and neighbour smoothing), topics discovered among what fits no area (discover) with
readable names (naming), and one line per paper that says what it does (summary). The
section a paper prints under follows from its area, never from the issue's size.

May import: `digest.config`, `digest.errors`, `digest.urls` (slugs), `digest.ingest`;
numpy/scikit-learn load lazily.
"""
