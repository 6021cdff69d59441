"""Issues in the store: what was composed is what is read back (sections, top story,
image sizes, dates), whether recorded at once, frozen as a draft, or a draft promoted;
and the draft stops being current when the next issue would differ."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select

from digest.models import Article, Issue, Item, Rendered, Section
from digest.store import Store, articles, issues
from digest.store.status import DeliveryStatus
from digest.store.tables import DeliveryRow, IssueItemRow, ListRow, SubscriberRow

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


def test_a_recorded_issue_reads_back_as_composed_with_its_ledger(store: Store) -> None:
    stored = issues.record(store, "weekly", composed(store), "readers", WHEN)
    again = issues.unfinished(store, "weekly")
    assert again == stored
    assert again.issue == ISSUE
    assert again.issue.top is not None and again.issue.top.image_width == 1200
    assert again.rendered == RENDERED
    assert (again.number, again.items, again.created_at) == (1, 3, WHEN)
    assert issues.find(store, "weekly", 1) == stored
    assert issues.next_number(store, "weekly") == 2
    assert issues.last_made(store, "weekly") == WHEN
    with store.session() as session:
        statuses = session.scalars(select(DeliveryRow.status)).all()
        positions = session.scalars(select(IssueItemRow.title).order_by(IssueItemRow.position))
        assert list(positions) == [i.title for i in ISSUE.items]
    assert statuses == [DeliveryStatus.QUEUED, DeliveryStatus.QUEUED]
    # Its articles are sent for this newsletter, not for another.
    urls = [i.url for i in ISSUE.items]
    assert articles.unsent(store, "weekly", urls) == []
    assert len(articles.unsent(store, "daily", urls)) == 3


def test_a_promoted_draft_is_the_issue_that_was_frozen(store: Store) -> None:
    frozen = composed(store)
    issues.freeze(store, "weekly", frozen)
    draft, note = issues.current_draft(store, "weekly", frozen.article_ids)
    assert draft is not None and note == ""
    assert draft.composed == frozen
    stored = issues.record(store, "weekly", draft.composed, "readers", WHEN)
    assert stored.issue == ISSUE and stored.rendered == RENDERED
    assert issues.draft(store, "weekly") is None  # the draft became the issue
    assert issues.unfinished(store, "weekly") == stored
    with store.session() as session:
        assert session.scalar(select(DeliveryRow.status).limit(1)) == DeliveryStatus.QUEUED


def test_a_draft_is_out_of_date_once_another_article_arrives(store: Store) -> None:
    frozen = composed(store)
    issues.freeze(store, "weekly", frozen)
    articles.add(
        store,
        [articles.Found(Article(url="https://news.example.org/late", headline="Late"), "", "")],
    )
    (late, _), *_ = articles.unsent(store, "weekly", ["https://news.example.org/late"])
    draft, note = issues.current_draft(store, "weekly", (*frozen.article_ids, late))
    assert draft is None
    assert note == "The previewed issue #1 was rebuilt: 1 new article(s) arrived since the preview."
    # Fewer candidates than the draft holds: one of its articles went out meanwhile.
    draft, note = issues.current_draft(store, "weekly", frozen.article_ids[:1])
    assert draft is None and "its articles changed" in note


def test_an_issue_without_a_top_story_round_trips_too(store: Store) -> None:
    plain = replace(ISSUE, top=None, sections=(Section("More stories", ISSUE.items),))
    assert issues.issue_from_json(issues.issue_to_json(plain)) == plain
    assert issues.issue_from_json(issues.issue_to_json(ISSUE)) == ISSUE
    stored = issues.record(store, "weekly", replace(composed(store), issue=plain), "readers", WHEN)
    assert stored.issue == plain
    assert issues.unfinished(store, "weekly") == stored


def test_an_article_reached_twice_is_stored_once_as_first_seen(store: Store) -> None:
    url = "https://news.example.org/harbour"
    first = articles.Found(Article(url=url, headline="Harbour reopens"), "guid-1", url)
    again = articles.Found(Article(url=url, headline="Changed"), "guid-2", f"{url}?ref=home")
    articles.add(store, [first, again])
    articles.add(store, [again])
    assert articles.known(store, [url, "guid-1", "guid-2", f"{url}?ref=home"]) == {url, "guid-1"}
    (_, stored), *rest = articles.unsent(store, "weekly", ["guid-1"])
    assert rest == [] and stored.headline == "Harbour reopens"
