"""The use cases, one module each, over the wiring that builds their parts.

- wiring.py: `App`, one per settings: the state database, the template set, the
  transport, the clock, the mailing, the signing key, built lazily, and nothing else;
  the use cases below are functions that take it (`publishing.send(app)`). `make_app`
  is the one factory; `make_reader_app` opens a state for looking only.
- ingesting.py: dumps into the state; a look at what the next issue would hold.
- publishing.py: `publish`, `send`, `dry_run`, `send_to`, `preview`: cut, render and
  store an issue and its deliveries, write the public files.
- delivering.py: the outbox as one worker, a test letter, replies (bounces).
- subscribing.py: the subscriber list, topics, double opt-in, the notices they send;
  subscriber_glance.py: `subscribers list` and `unsubscribe` with the driver alone.
- inspecting.py: status, the daemon and its next runs, workers, the archive's search.
- scheduling.py: what the daemon needs of the state: its locks, job store and notes.
- readers.py: a reader's own links: "more / less like this" marks, their private feed.
- letters.py: the letters of an issue (one per selection) and the stored e-mail copy;
  reports.py: what a publish reports (`Prepared`, `SendReport`); heap.py: the C
  allocator told to give back the large buffers a publish drops (glibc).

The CLI, the daemon and the web server call these and nothing below them. May import
every stage package below (mail, publish, render, sections, state, ingest, config);
never SQLAlchemy (state/ owns the database). Each module imports a heavy part (the
template set, scikit-learn, the ORM) only where it is used, so that a command loads only
what it needs.
"""

from __future__ import annotations

from digest.app.wiring import App, make_app, make_reader_app
from digest.errors import DigestError

__all__ = ["App", "DigestError", "make_app", "make_reader_app"]
