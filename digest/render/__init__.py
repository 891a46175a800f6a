"""Render: an issue as people read it — plain data in, text out; no database, no files.

- `viewmodel`: the view model (`DigestView`, `SectionView`, `PaperView`, `IssueSummary`:
  plain dataclasses, never ORM objects) and `digest_view`, which builds it from the cut
  sections, with the subject line.
- `reading`: what a reader follows from a paper (where to read it, its first sentence,
  its URLs as links).
- `topics`: what the subscribe and preferences pages offer (areas and their sections).
- `templates`: the template-set loader (``templates_dir``, the chosen set, ``default``;
  a ``default:`` prefix for overrides).
- `environment`: the Jinja2 environments (HTML autoescaped, text not) and their filters.
- `inline`: the e-mail inliner (premailer, once per rendered issue).
- `renderer`: `Renderer`, the entry point: e-mail HTML and text, a feed entry, the web
  copy, the archive pages, a section's page, one-off notices and the web server's pages.

May import: `digest.config`, `digest.errors`, `digest.text`, `digest.urls`,
`digest.ingest` (links), `digest.state.store` (read-only paper records), `digest.sections`.
"""
