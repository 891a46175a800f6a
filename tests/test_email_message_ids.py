"""Message-IDs reveal nothing: not the subscriber's row (the list's size), the time,
the process or the host; each is 128 random bits. On SQLite and PostgreSQL, where the
digest's are made by the database."""

from __future__ import annotations

import itertools
import mailbox
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy

from sqlalchemy import select

from digest.app import make_app, publishing, subscribing
from digest.config import Settings
from digest.mail.notices import Notice, notice_message
from digest.state.models import Subscriber

OPAQUE = re.compile(r"<[0-9a-f]{32}@localhost>")


def test_message_ids_reveal_no_row_id(settings: Settings) -> None:
    app = make_app(settings)
    book = subscribing.book(app)
    for i in range(8):
        book.add(f"reader{i}@example.org")
    assert publishing.send(app).delivery.sent == 10  # the 2 configured recipients, then 8 more
    box = mailbox.Maildir(settings.outbox_dir, create=False)
    sent = [message_from_bytes(m.as_bytes(), policy=policy.default) for m in box]
    ids = {str(m["To"]): str(m["Message-ID"]) for m in sent}
    with app.session() as s:
        rows = {a: i for a, i in s.execute(select(Subscriber.address, Subscriber.id))}
    assert len(ids) == 10 and len(set(ids.values())) == 10
    for address, message_id in ids.items():
        assert OPAQUE.fullmatch(message_id), message_id
        assert f".{rows[address]}@" not in message_id, message_id
    # no two share a prefix longer than chance allows (an id made of a per-digest part
    # and a counter would)
    lefts = sorted(i.strip("<>") for i in ids.values())
    shared = max(len(_common(a, b)) for a, b in itertools.pairwise(lefts))
    assert shared < 12, lefts


def test_notices_have_opaque_message_ids() -> None:
    when = datetime(2026, 12, 3, tzinfo=UTC)
    made = [
        notice_message(Notice("a@example.org", "s", "t", "<p>h</p>"),
                       sender="Digest <digest@localhost>", when=when)["Message-ID"]
        for _ in range(2)
    ]  # fmt: skip
    assert all(OPAQUE.fullmatch(m) for m in made) and made[0] != made[1], made


def _common(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
