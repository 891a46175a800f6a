"""Mail: building messages (message), each subscriber's selection of sections under the size
limit (variants), transports (Maildir, SMTP), the outbox rows, delivery workers, rate limits,
and the subscriber list.

May import: `digest.config`, `digest.errors`, `digest.urls`, `digest.state`, `digest.render`.
"""
