"""Issues in the store: what was composed is what is read back (sections, top story,
image sizes, dates), whether recorded at once, frozen as a draft, or a draft promoted;
and the draft stops being current when the next issue would differ."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from digest.models import Article, Section
from digest.store import Store, articles, issues
from digest.store.status import DeliveryStatus
from digest.store.tables import DeliveryRow, IssueItemRow
from tests.support.issues import ISSUE, RENDERED, WHEN, composed
from tests.support.issues import store as store  # the fixture


def test_a_recorded_issue_reads_back_as_composed_with_its_ledger(store: Store) -> None:
    stored = issues.record(store, "weekly", composed(store), "readers", WHEN)
    assert stored is not None
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
    assert stored is not None
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
    assert stored is not None
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


def test_an_articles_declared_picture_size_is_kept(store: Store) -> None:
    article = Article(
        url="https://news.example.org/sized",
        headline="Sized",
        image="https://news.example.org/sized.jpg",
        image_width=800,
        image_height=450,
    )
    articles.add(store, [articles.Found(article, guid="", source_url=article.url)])
    ((_, stored),) = articles.unsent(store, "weekly", [article.url])
    assert (stored.image_width, stored.image_height) == (800, 450)
