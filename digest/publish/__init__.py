"""Publish: the public files, kept up to date from the state (site: the index, the pages
of older issues, each issue's web copy and every feed; pages: which pages of older issues
to write; sectionfeeds: the entries of the per-topic feeds; feeds: the RSS, Atom and
JSON feeds and the per-section feeds, made with feedgen), all written atomically, each
with its gzip copy beside it (public: what `digest serve` and nginx send compressed).

May import: `digest.fsutil`, `digest.errors`, `digest.config`, `digest.urls`,
`digest.render`, `digest.sections.areas` (the vocabulary: which areas a topic's feed
covers), `digest.ingest.links` (text tidying), `digest.state` (read-only queries,
and the one meta row that records which files are written).
"""
