"""Sections: cutting the pending papers into named topic sections — configured themes first
(assign), discovered topics for the rest (discover), readable names for them (naming).

May import: `digest.config`, `digest.errors`, `digest.ingest`; numpy/scikit-learn load lazily.
"""
