"""Ingest: reading a dump file into a listing (date, papers, warnings), the links in abstracts,
and the key that identifies a paper; `files` records dump files into the state.

May import: `digest.errors`, `digest.config`, `digest.fsutil`; `files` also `digest.state`.
"""
