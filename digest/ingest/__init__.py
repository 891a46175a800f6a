"""Ingest: reading a dump file into a listing (date, papers, warnings: parse), the links in
abstracts (links), the key that identifies a paper (keys: the one title fold, also used by
sections); `files` reads dump files from the folder into a `Ledger` of the dumps already
read, which the caller gives (the state's `papers.DumpLedger`): ingest never imports the
state.

May import: `digest.errors`, `digest.config`, `digest.fsutil`.
"""
