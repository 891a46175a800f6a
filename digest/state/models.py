"""The state tables (SQLAlchemy 2 declarative). Schema changes go through Alembic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from digest.addresses import new_token
from digest.state.states import DeliveryStatus, DigestStatus, SubscriberStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns timezone-aware datetimes on every backend (SQLite has no zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class DumpFile(Base):
    """One dump file, remembered by content hash: the same bytes are never read twice."""

    __tablename__ = "dump_files"
    __table_args__ = (Index("ix_dump_files_path", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int | None] = mapped_column(BigInteger)  # recognised before hashing
    status: Mapped[str] = mapped_column(String(16))  # DumpStatus.INGESTED | FAILED
    error: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    listing_date: Mapped[date | None] = mapped_column(Date)
    paper_count: Mapped[int] = mapped_column(Integer, default=0)
    new_papers: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Paper(Base):
    """A paper, identified by its normalised title."""

    __tablename__ = "papers"
    __table_args__ = (
        Index(
            "ix_papers_pending",
            "id",
            sqlite_where=text("published_in IS NULL"),
            postgresql_where=text("published_in IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text)
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_dump_id: Mapped[int | None] = mapped_column(ForeignKey("dump_files.id"))
    published_in: Mapped[int | None] = mapped_column(Integer)  # digests.id; NULL: pending


class PaperFact(Base):
    """What is worked out once per paper (its one-line summary, where the vocabulary's
    terms occur in it), under the version of the summariser and vocabulary that made it."""

    __tablename__ = "paper_facts"

    paper_id: Mapped[int] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    hits: Mapped[str] = mapped_column(Text)  # JSON: [[term, in title, in abstract], ...]
    words: Mapped[int] = mapped_column(Integer)


class Sighting(Base):
    """A paper listed in a dump (how often a paper reappears is a ranking signal)."""

    __tablename__ = "sightings"

    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id"), primary_key=True)
    dump_id: Mapped[int] = mapped_column(ForeignKey("dump_files.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class Digest(Base):
    """A published issue, with what was rendered for it."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue: Mapped[int] = mapped_column(Integer, unique=True)
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)  # e-mail HTML, CSS inlined
    web_html: Mapped[str] = mapped_column(Text)  # "" since 0021: the web copy is web_gz
    web_gz: Mapped[bytes | None] = mapped_column(LargeBinary)  # its gzip, as in <n>.html.gz
    feed_html: Mapped[str | None] = mapped_column(Text)  # the feed entry; None before 0004
    paper_count: Mapped[int] = mapped_column(Integer)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=DigestStatus.PUBLISHED)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestItem(Base):
    """A paper in a digest. A paper is in at most one digest: that is what "sent" means."""

    __tablename__ = "digest_items"
    __table_args__ = (
        Index("ix_digest_items_slug", "section_slug", "digest_id"),
        Index("ix_digest_items_area", "area_slug", "digest_id"),
    )

    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("papers.id"), primary_key=True, unique=True)
    section: Mapped[str] = mapped_column(Text)
    section_slug: Mapped[str] = mapped_column(String(200))
    # the paper's own area (its section's area or one below it), decided once at publish
    area_slug: Mapped[str] = mapped_column(String(200), default="", server_default="")
    position: Mapped[int] = mapped_column(Integer)


class Subscriber(Base):
    """Someone who receives the digest: only the chosen themes, until they unsubscribe."""

    __tablename__ = "subscribers"
    __table_args__ = (Index("uq_subscribers_feed_token", "feed_token", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(320), unique=True)  # address, case-folded
    address: Mapped[str] = mapped_column(Text)  # as validated (first spelling wins)
    name: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.ACTIVE)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)  # section slugs; [] = all
    token: Mapped[str] = mapped_column(String(64), unique=True)  # secrets.token_urlsafe(32)
    bounce_count: Mapped[int] = mapped_column(Integer, default=0)  # permanent failures in a row
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # phrases the reader watches and mutes, ";"-separated (personal/phrases.py)
    watch: Mapped[str] = mapped_column(Text, default="", server_default="")
    mute: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the private feed's /feeds/<feed_token>.xml (not the unsubscribe token); 0020
    feed_token: Mapped[str | None] = mapped_column(String(64), default=new_token)


class Feedback(Base):
    """A reader's "more / less like this" mark on a paper (one per subscriber and paper;
    a new mark replaces the old). Goes with its subscriber."""

    __tablename__ = "feedback"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    paper_key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[int] = mapped_column(SmallInteger)  # +1 more like this, -1 less
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DigestVariant(Base):
    """A digest rendered for one selection of its sections (CSS inlined once per variant);
    each subscriber's copy only fills their own unsubscribe token into it."""

    __tablename__ = "digest_variants"
    __table_args__ = (UniqueConstraint("digest_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id"))
    key: Mapped[str] = mapped_column(String(64))  # "*" (every section) or a hash of the slugs
    sections: Mapped[list[str]] = mapped_column(JSON, default=list)  # slugs; [] = all
    subject: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)  # inlined; the token is a placeholder
    text: Mapped[str] = mapped_column(Text)


class Delivery(Base):
    """One message of one digest to one subscriber, created with the digest, before
    anything is sent: pending -> sending -> sent | failed (or skipped: no chosen theme)."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("digest_id", "subscriber_id"),
        Index("ix_deliveries_status", "status"),
        Index("ix_deliveries_message_id", "message_id"),  # bounces name their message
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("digest_variants.id"))
    address: Mapped[str] = mapped_column(Text)  # where it went, as of its creation
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # renewed while held
    claimed_by: Mapped[int | None] = mapped_column(Integer)  # workers.id (no FK: it may go)
    claim_token: Mapped[str | None] = mapped_column(String(32))  # the holding worker run's
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Worker(Base):
    """A live delivery process: its heartbeat renews the lease on the rows it claimed,
    and its counts are what `digest status` shows."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    deferred: Mapped[int] = mapped_column(Integer, default=0)


class RateBucket(Base):
    """A rate limit shared by every worker on every host: the next free send slot, in
    microseconds since the Unix epoch by the database's clock (mail/ratelimit.py)."""

    __tablename__ = "rate_buckets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    next_slot: Mapped[int] = mapped_column(BigInteger, default=0)


class Meta(Base):
    """Small facts the daemon keeps across restarts (e.g. when it last warned of a stale source)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Signup(Base):
    """A confirmation e-mail sent by the /subscribe form (double opt-in). The address
    becomes an active subscriber only when the link with the token is opened; only the
    token's SHA-256 is kept."""

    __tablename__ = "signups"
    __table_args__ = (Index("ix_signups_key", "key"), Index("ix_signups_ip_hash", "ip_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(320))  # address, case-folded
    address: Mapped[str] = mapped_column(Text)
    themes: Mapped[list[str]] = mapped_column(JSON, default=list)  # section slugs; [] = all
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    ip_hash: Mapped[str] = mapped_column(String(64))  # HMAC of the client's address
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
