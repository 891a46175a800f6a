"""Render: the view model of an issue (plain dataclasses, never ORM objects), the Jinja2
environment and template sets, e-mail HTML with CSS inlined once, and the text part.

May import: `digest.config`, `digest.errors`, `digest.ingest`, `digest.state.store` (read-only
paper records), `digest.sections`.
"""
