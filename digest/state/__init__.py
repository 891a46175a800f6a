"""State, the only package that imports SQLAlchemy: the tables (models), the engine and
sessions (db), Alembic migrations, the queries (store: dumps, papers, status and meta;
digests: storing and listing published digests; papers: the ledger ingest reads dumps
into; issues: what was published, its search and the section feeds; meta: scheduled
runs, last ingest), the repositories of mail/ (outbox: delivery rows, letters and their
counts; claims: claiming, leasing and finishing rows; workers: the workers' rows and
heartbeats; ratebucket; subscribers; signups), the database's clock (dbclock), the
archive's full-text search (archive), each paper's kept summary and terms (papers'
FactsTable), readers' phrases (readers) and feedback marks and feed tokens (feedback),
what the commands that must start at once read with the driver alone, without
SQLAlchemy (driver: the URL, a connection, the schema's check; glance: `digest status`;
subscriber_glance: `subscribers list`, `unsubscribe`), and the exclusive locks on the
state. The mail repositories take the caller's open transaction
(`handles.Tx`) first, never commit, and return frozen dataclasses or tuples, never ORM
objects: the caller owns the transaction (handles.py says it at length).

May import: `digest.errors`, `digest.config`, `digest.fsutil`, `digest.ingest.parse`,
`digest.ingest.links`, `digest.ingest.ledger` (the listing and ledger types),
`digest.ingest.keys` (paper keys, also in a migration). Nothing here renders, sends or publishes.
"""
