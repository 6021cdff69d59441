"""The store: migrations create the schema on SQLite and PostgreSQL, rerunning them is
harmless, timestamps come back aware in UTC, and the ledger's uniqueness holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import IntegrityError

from digest.errors import StoreError
from digest.store import Store
from digest.store.tables import (
    ArticleRow,
    DeliveryRow,
    HttpCacheRow,
    IssueRow,
    ListRow,
    SubscriberRow,
)

TABLES = {
    "articles",
    "lists",
    "subscribers",
    "issues",
    "issue_items",
    "deliveries",
    "alembic_version",
}


def test_migrations_create_every_table_and_rerun_harmlessly(database_url: str) -> None:
    store = Store(database_url)
    assert set(inspect(store.engine).get_table_names()) >= TABLES
    store.close()
    again = Store(database_url)  # a second open runs the migrations again: a no-op
    with again.session() as session:
        assert session.scalar(select(ListRow)) is None
    again.close()


def test_timestamps_round_trip_as_aware_utc(database_url: str) -> None:
    store = Store(database_url)
    published = datetime(2026, 11, 18, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with store.session() as session:
        session.add(ArticleRow(url="https://a.example/x", headline="H", published=published))
    with store.session() as session:
        row = session.scalar(select(ArticleRow))
        assert row is not None and row.published == published
        assert row.published.tzinfo is not None and row.published.utcoffset() == timedelta(0)
        assert row.collected_at.tzinfo is not None


def test_naive_timestamps_are_refused(database_url: str) -> None:
    store = Store(database_url)
    with pytest.raises(Exception, match="naive datetime"), store.session() as session:
        session.add(
            ArticleRow(url="https://a.example/y", headline="H", published=datetime(2026, 1, 1))
        )
        session.flush()


def test_one_ledger_row_per_issue_and_subscriber(database_url: str) -> None:
    store = Store(database_url)
    with store.session() as session:
        lst = ListRow(name="demo")
        session.add(lst)
        session.flush()
        sub = SubscriberRow(list_id=lst.id, email="a@example.org", email_key="a@example.org")
        issue = IssueRow(
            newsletter="weekly",
            number=1,
            issue_date="2026-11-22",
            subject="S",
            html="<p>",
            text="t",
        )
        session.add_all([sub, issue])
        session.flush()
        session.add(DeliveryRow(issue_id=issue.id, subscriber_id=sub.id, email=sub.email))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(DeliveryRow(issue_id=issue.id, subscriber_id=sub.id, email=sub.email))
        session.flush()
    with store.session() as session:
        assert len(session.scalars(select(DeliveryRow)).all()) == 1


def test_unreachable_database_is_a_clear_store_error() -> None:
    with pytest.raises(
        StoreError, match=r"Cannot open the database postgresql\+psycopg://nobody@127\.0\.0\.1:9/x"
    ):
        Store("postgresql+psycopg://nobody@127.0.0.1:9/x")


def test_unusable_url_is_a_clear_store_error() -> None:
    with pytest.raises(StoreError, match="The database URL 'nosuchdb://x' cannot be used"):
        Store("nosuchdb://x")


def test_issue_created_at_defaults_to_now_in_utc(database_url: str) -> None:
    store = Store(database_url)
    before = datetime.now(UTC) - timedelta(seconds=5)
    with store.session() as session:
        session.add(
            IssueRow(
                newsletter="n", number=1, issue_date="2026-11-22", subject="S", html="h", text="t"
            )
        )
    with store.session() as session:
        row = session.scalar(select(IssueRow))
        assert row is not None and row.created_at >= before


def _open_store(url: str) -> int:
    Store(url).close()
    return 0


def test_processes_opening_a_new_database_together_migrate_once(database_url: str) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_open_store, [database_url] * 4))
    assert results == [0, 0, 0, 0]
    store = Store(database_url)
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1


def test_migrations_match_the_table_definitions(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from digest.store.tables import Base

    store = Store(database_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_the_http_cache_keeps_one_entry_per_url_replaced_in_place(database_url: str) -> None:
    from digest.store.http_cache import HttpCache

    cache = HttpCache(Store(database_url))
    url = "https://news.example.org/feed.xml"

    def put(final_url: str, etag: str, body: bytes) -> None:
        kind = "application/rss+xml"
        cache.put(
            url,
            final_url=final_url,
            status=200,
            etag=etag,
            last_modified="",
            content_type=kind,
            body=body,
        )

    put(url, '"v1"', b"<rss/>")
    cache.save_listing(url, {"entries": ["a"]})
    first = cache.get(url)
    assert first is not None and first.listing == {"entries": ["a"]}
    put("", '"v2"', b"<rss>2</rss>")
    second = cache.get(url)
    assert second is not None
    assert (second.etag, second.body, second.listing) == ('"v2"', b"<rss>2</rss>", None)
    assert second.final_url == url  # an empty final URL reads back as the URL itself
    assert second.validators() == {"If-None-Match": '"v2"'}
    assert second.fetched_at >= first.fetched_at
    cache.touch(url)
    touched = cache.get(url)
    assert touched is not None and touched.fetched_at >= second.fetched_at
    with cache.store.session() as session:
        assert session.scalar(select(func.count()).select_from(HttpCacheRow)) == 1
    assert cache.get("https://news.example.org/other.xml") is None
