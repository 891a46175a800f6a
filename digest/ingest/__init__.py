"""Ingest: reading a dump file into a listing (date, papers, warnings: parse), the links in
abstracts (links), the key that identifies a paper (keys: the one title fold, also used by
sections); `files` reads dump files from the folder and records them into the state.

May import: `digest.errors`, `digest.config`, `digest.fsutil`; `files` also `digest.state`.
"""
