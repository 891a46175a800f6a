"""Publish: the RSS, Atom and JSON feeds (feedgen) and the per-section feeds, written
atomically.

May import: `digest.fsutil`, `digest.errors`, `digest.render`.
"""
