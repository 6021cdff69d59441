"""The database tables (SQLAlchemy 2 declarative). Alembic migrations create them.

Rows are the store's business; stages exchange the frozen values of
``digest.models`` instead. Timestamps are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


#: The largest value an ``Integer`` column holds on every database (PostgreSQL's
#: INTEGER); a number from outside past it matches no row and must not reach a query.
INTEGER_MAX = 2**31 - 1


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None


class Base(DeclarativeBase):
    pass


class ArticleRow(Base):
    """An extracted article, keyed by canonical URL; fetched once, reused by every newsletter."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    guid: Mapped[str] = mapped_column(String(2048), default="", index=True)
    source_url: Mapped[str] = mapped_column(String(2048), default="", index=True)
    headline: Mapped[str] = mapped_column(Text)
    standfirst: Mapped[str] = mapped_column(Text, default="")
    lead: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    image_alt: Mapped[str] = mapped_column(Text, default="")
    image_width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    image_height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    section: Mapped[str] = mapped_column(String(200), default="")
    byline: Mapped[str] = mapped_column(String(500), default="")
    language: Mapped[str] = mapped_column(String(35), default="")
    published: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ListRow(Base):
    """A subscriber list, referenced by name from schedules.yaml."""

    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriberRow(Base):
    """One address on one list. ``email_key`` (the address lower-cased: letter case makes
    no second person) makes it unique per list; ``email`` is the address as typed."""

    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("list_id", "email_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own: the unique (list_id, email_key) leads with it. One on list_id
    # alone is what PostgreSQL takes, without statistics, to look up a key, filtering
    # the whole list (migration 0016, ``subscriber_import.lookup``).
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    # Indexed alone as well: a bounce, complaint or suppression names an address on
    # every list (``subscribers.with_key``), which otherwise reads the whole table.
    email_key: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="active", index=True)
    status_source: Mapped[str] = mapped_column(String(20), default="import")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IssueRow(Base):
    """One edition of a newsletter, its rendered content frozen once built.

    ``status``: an ``IssueStatus`` (``digest.store.status``).
    """

    __tablename__ = "issues"
    __table_args__ = (UniqueConstraint("newsletter", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    newsletter: Mapped[str] = mapped_column(String(200), index=True)
    number: Mapped[int] = mapped_column(Integer)
    issue_date: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="sending", index=True)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    slots: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: The composed ``Issue`` as JSON (``digest.store.issues``); empty before revision 0010.
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class IssueItemRow(Base):
    """An article as it appeared in an issue; an article is in at most one issue per newsletter."""

    __tablename__ = "issue_items"
    __table_args__ = (UniqueConstraint("issue_id", "article_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")


class DeliveryRow(Base):
    """The ledger: one row per (issue, subscriber); ``status`` a ``DeliveryStatus``,
    ``queued`` -> ``sent``, ``failed`` or ``skipped``."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        Index("ix_deliveries_issue_status", "issue_id", "status"),
        # The claim's index: one issue's unsettled rows in id order, and nothing else, so
        # a claim reads its batch and stops however many settled rows earlier issues
        # left (and whatever the planner's statistics say). Queries must spell the
        # predicate as the literal ``status = 'queued'`` for the databases to use it.
        Index(
            "ix_deliveries_queued",
            "issue_id",
            "id",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # No index of its own: the unique (issue_id, subscriber_id) and (issue_id, status)
    # both lead with it.
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    # Indexed with issue_id only: every query names the issue, and an index on status
    # alone would be rewritten for every row a send settles.
    status: Mapped[str] = mapped_column(String(20), default="queued")
    provider_id: Mapped[str] = mapped_column(String(500), default="")
    # The Message-ID the sent message carried (globally unique), for bounce matching.
    message_id: Mapped[str] = mapped_column(String(250), default="", server_default="")
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Claims, so workers on several machines sharing one database can take batches:
    # a worker ("host:pid") holds its rows until ``lease_until``; a transient failure
    # waits until ``not_before`` (the backoff) before anyone retries it.
    claimed_by: Mapped[str] = mapped_column(String(200), default="")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DeliveryCountRow(Base):
    """How many ledger rows of an issue ended in each status, kept when ``digest ledger
    prune`` deletes the rows themselves (``digest.store.ledger.prune``)."""

    __tablename__ = "delivery_counts"

    issue_id: Mapped[int] = mapped_column(
        ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class SubscriberEventRow(Base):
    """The history of a subscriber: each status change (or counted event) with when and
    from where (``import``, ``form``, ``confirm``, ``one-click``, ``preferences``,
    ``webhook``, ``cli``, ``send``; ``migration`` for rows merged by migration 0012)."""

    __tablename__ = "subscriber_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(20))
    previous: Mapped[str] = mapped_column(String(20), default="")
    source: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SuppressionRow(Base):
    """The global suppression list: an address here is never sent to again, from any list.

    ``email_key`` is the same uniqueness key as ``subscribers.email_key``.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SoftBounceRow(Base):
    """Soft bounces counted per address; enough of them suppress it."""

    __tablename__ = "soft_bounces"

    email_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PreferenceRow(Base):
    """What a subscriber chose on the preferences page: the sections wanted (``None``: all)
    and a pause until a moment (``None``: not paused)."""

    __tablename__ = "subscriber_preferences"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    sections: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEventRow(Base):
    """Provider events already processed (by the provider's event id or signing token),
    so a replayed webhook is rejected rather than counted twice."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(500))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class IssueDraftRow(Base):
    """The next issue of a newsletter as ``preview`` froze it; at most one per newsletter.

    ``run`` sends it byte for byte (and deletes it) unless new articles arrived after
    ``created_at``. ``items`` lists, in email order, ``{"article_id", "section",
    "title", "summary"}`` for the issue_items rows the sent issue will get.
    """

    __tablename__ = "issue_drafts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    newsletter: Mapped[str] = mapped_column(String(200), unique=True)
    number: Mapped[int] = mapped_column(Integer)
    issue_date: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    slots: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: The composed ``Issue`` as JSON, as on ``IssueRow``.
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleRunRow(Base):
    """One scheduled slot of a newsletter, claimed before it runs.

    The unique (newsletter, slot) pair is the guard that two daemons on one database
    never send the same issue: the second insert fails. ``status``: ``running`` while
    a process works on it, then ``done``, ``nothing`` (nothing new to send), ``failed``,
    ``missed`` (too late, beyond ``misfire_grace``) or ``interrupted`` (stopped by
    SIGTERM between batches; the next start resumes it). ``heartbeat_at``: refreshed
    by the owner while the slot runs; a stale one means the owner is gone.
    """

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("newsletter", "slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    newsletter: Mapped[str] = mapped_column(String(200), index=True)
    slot: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="running", index=True)
    owner: Mapped[str] = mapped_column(String(300), default="")
    issue_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# APScheduler's job store (digest.schedule), declared here so that Alembic creates it,
# before any daemon starts (two starting at once would race to create it), and so that
# autogenerate knows it. Its layout is SQLAlchemyJobStore's, which must keep matching it.
apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class HttpCacheRow(Base):
    """Validators of a source document (feed, sitemap, listing page, robots.txt) from its
    last fetch, so the next fetch can be conditional; the body is kept so that a 304 can
    be answered from here."""

    __tablename__ = "http_cache"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    final_url: Mapped[str] = mapped_column(String(2048), default="")
    etag: Mapped[str] = mapped_column(String(1024), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    content_type: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[int] = mapped_column(Integer, default=200)
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    #: The entries collection parsed from ``body``, so an unchanged feed is not parsed again.
    listing: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EditorialRow(Base):
    """The editorial state of a newsletter under review (``digest.editorial``); at most
    one per newsletter.

    ``edits`` are the editor's changes to issue ``number`` (``{"drop", "pin", "moves",
    "note", "subject"}``), applied again whenever the draft is rebuilt. ``version``
    grows at every rebuild and edit; ``fingerprint`` identifies the draft
    (``issue_drafts``) that version is, and an approval holds only while
    ``approved_version`` is ``version`` and the draft is still that one.
    ``review_slot`` is the scheduled slot whose review mail went out.
    """

    __tablename__ = "editorial"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    newsletter: Mapped[str] = mapped_column(String(200), unique=True)
    number: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    edits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    approved_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_by: Mapped[str] = mapped_column(String(320), default="")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    review_slot: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
