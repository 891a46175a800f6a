"""Helpers the tests share, imported by test modules, the conftest and the benchmarks
(never collected as tests themselves; a test module is never imported by another).

- ``dumps``: the bundled sample dumps and ``write_dump`` for hand-made ones
- ``papers``: sample papers for section tests and benchmarks, and as many more as wanted
- ``net``: ``free_port``
- ``waiting``: ``wait_for``, the one way a test waits for an event
- ``smtp``: real SMTP servers in the test process (aiosmtpd) and the handlers they run
- ``settings``: ``make_settings``, the standard two-theme settings on a temp folder
- ``web``: the real web server on a free port (``serve``) and a small HTTP client
- ``bucket``: a process drawing from the shared rate-limit bucket (``python -m``)
- ``crash``: a real ``digest send`` killed mid-send, and the duplicate count it causes
"""
