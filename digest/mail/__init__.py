"""Mail: building messages (message), each subscriber's selection of sections under the size
limit (variants), transports (Maildir, SMTP), the letters going into the outbox, the delivery
engine, rate limits, one-off notices (notices: confirmation, welcome, the admin's alert,
DKIM-signed), the subscriber list's rules (subscribers) and its CSV file (csvfile). No SQL
here: the rows are read and written through the state's repositories (a forbidden contract
in pyproject.toml).

May import: `digest.config`, `digest.errors`, `digest.urls`, `digest.state`, `digest.render`.
"""
