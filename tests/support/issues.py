"""A small composed issue (with a top story, image sizes and dates) recorded in a store
with two readers: for tests of the issue store and of what records issues."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from digest.models import Article, Issue, Item, Rendered, Section
from digest.store import Store, articles, issues
from digest.store.tables import ListRow, SubscriberRow

WHEN = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


def item(slug: str, section: str, **extra: Any) -> Item:
    return Item(
        title=f"Story {slug}",
        summary=f"What happened in {slug}.",
        url=f"https://news.example.org/{slug}",
        section=section,
        **extra,
    )


ISSUE = Issue(
    newsletter="weekly",
    title="The Weekly",
    number=1,
    date=date(2026, 11, 30),
    top=item(
        "harbour",
        "Europe",
        image="https://news.example.org/harbour.jpg",
        image_alt="The harbour at dawn",
        image_width=1200,
        image_height=675,
        published=datetime(2026, 11, 29, 18, 5, tzinfo=timezone(timedelta(hours=1))),
    ),
    sections=(
        Section("Europe", (item("rail", "Europe", published=datetime(2026, 11, 28, tzinfo=UTC)),)),
        Section("More stories", (item("misc", ""),)),
    ),
)
RENDERED = Rendered(
    subject="The Weekly #1: Story harbour",
    preheader="Three stories",
    html="<p>@@greeting@@</p>",
    text="@@greeting@@",
    slots=(("greeting", "@@greeting@@"),),
)


@pytest.fixture
def store(database_url: str) -> Store:
    store = Store(database_url)
    with store.session() as session:
        readers = ListRow(name="readers")
        session.add(readers)
        session.flush()
        for address in ("ana@example.org", "bo@example.org"):
            session.add(SubscriberRow(list_id=readers.id, email=address, email_key=address))
    return store


def composed(store: Store) -> issues.Composed:
    articles.add(
        store,
        [
            articles.Found(Article(url=i.url, headline=i.title), guid="", source_url=i.url)
            for i in ISSUE.items
        ],
    )
    unsent = articles.unsent(store, "weekly", [i.url for i in ISSUE.items])
    by_url = {article.url: article_id for article_id, article in unsent}
    return issues.Composed(ISSUE, RENDERED, tuple(by_url[i.url] for i in ISSUE.items))
