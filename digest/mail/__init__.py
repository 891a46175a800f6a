"""Mail: building messages (message), each subscriber's selection of sections under the size
limit (variants), transports (Maildir, SMTP), the letters going into the outbox (outbox),
each reader's letter put together from pieces rendered once (assembly: what is rendered
per issue; pieces: cutting and joining them; personal_letters: a reader's message) and
their private feed (private_feed), one-off notices (notices: confirmation, welcome, the
admin's alert, DKIM-signed), the subscriber list's rules (subscribers, signup) and its CSV file
(csvfile), bounces and the inbox, and delivery:

- delivery: what a run is (policy, mailing, stops, report) and the factory from settings;
- engine: `DeliveryEngine`, one worker's run: sender threads (one SMTP connection each)
  fed by batch claims;
- lease: the worker's lease and its heartbeat thread; outcomes: what each answer does
  to its row, the report's counts, the circuit breakers; retryqueue: the queue of work
  with retries; ratelimit: the rate limit shared by every worker.

Words: a *worker* is one process that delivers (`digest worker`, or `digest send`), with
its row in the state; its *sender threads* each hold one connection. No SQL here: the rows
are read and written through the state's repositories (a forbidden contract in
pyproject.toml).

May import: `digest.config`, `digest.errors`, `digest.urls`, `digest.state`, `digest.render`.
"""
