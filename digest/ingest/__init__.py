"""Ingest: dump files into listings, and listings into the caller's ledger — pure; ingest
never imports the state.

Parsing one file (`parse.parse_bytes`, the entry point) goes through `decode` (bytes →
clean text, bad bytes reported), `header` (format detection: blocks, the boilerplate
header and the listing date) and `papers` (the record parser: titles and abstracts,
duplicates, an unfinished last paper). `links` finds the links in abstracts and tidies
their text; `keys` is the one title fold that identifies a paper (also used by sections).

Reading the folder: `folder` (only regular files, never through a link, within
``max_dump_bytes``), `settle` (a file modified within ``settle_seconds`` waits), `ledger`
(the `Ledger` protocol the state's papers repository implements, and the reports), and
`files` (the flow: `read_ahead` before the write lock, then `ingest_folder` /
`ingest_files` / `ingest_one`).

May import: `digest.errors`, `digest.text`.
"""
