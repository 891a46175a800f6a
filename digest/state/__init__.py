"""State: the tables (models), the engine and sessions (db), Alembic migrations, the queries
(store: dumps and papers; archive: what was published, and its search), and the exclusive
locks on the state. The repositories of mail/ (outbox, workers, ratebucket, subscribers,
signups) take the caller's open transaction (`handles.Tx`) first, never commit, and return
frozen dataclasses or tuples, never ORM objects: the caller owns the transaction
(handles.py says it at length).

May import: `digest.errors`, `digest.config`, `digest.fsutil`, `digest.ingest.parse` /
`digest.ingest.links` (the listing types), `digest.ingest.keys` (paper keys, also in a
migration). Nothing here renders, sends or publishes.
"""
