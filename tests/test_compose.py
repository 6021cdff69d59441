"""Composition: section order, newest first, caps, top story; and ``restrict``, one
reader's cut of a composed issue by the same rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from digest.compose import UNSECTIONED, compose, restrict, section_of
from digest.config import NewsletterConfig
from digest.models import Article


def newsletter(**overrides: Any) -> NewsletterConfig:
    settings: dict[str, Any] = {
        "title": "T",
        "sources": [{"feed": "feed.xml"}],
        "list": "l",
        "backend": "b",
        "sections": ["Europe", "Asia"],
        **overrides,
    }
    return NewsletterConfig.model_validate(settings)


def article(slug: str, section: str, day: int | None) -> Article:
    return Article(
        url=f"https://n.example/{slug}",
        headline=slug,
        standfirst=f"About {slug}.",
        section=section,
        published=datetime(2026, 11, day, tzinfo=UTC) if day else None,
    )


ARTICLES = [
    article("asia-old", "Asia", 1),
    article("tech", "Technology", 9),
    article("europe-old", "europe", 2),
    article("nosection", "", 10),
    article("europe-new", "Europe", 8),
    article("asia-new", "Asia", 7),
    article("asia-undated", "Asia", None),
    article("economy", "Economy", 5),
]


def titles(issue: Any) -> list[tuple[str, list[str]]]:
    return [(s.name, [i.title for i in s.items]) for s in issue.sections]


def test_sections_in_configured_order_then_newest_first() -> None:
    issue = compose("w", newsletter(), ARTICLES, number=3, issue_date=date(2026, 11, 10))
    assert titles(issue) == [
        ("Europe", ["europe-new", "europe-old"]),
        ("Asia", ["asia-new", "asia-old", "asia-undated"]),
        ("Technology", ["tech"]),
        ("Economy", ["economy"]),
        (UNSECTIONED, ["nosection"]),
    ]
    assert issue.number == 3 and issue.top is None


def test_total_cap_drops_the_oldest() -> None:
    issue = compose("w", newsletter(max_items=4), ARTICLES, number=1, issue_date=date.today())
    assert sorted(i.title for i in issue.items) == ["asia-new", "europe-new", "nosection", "tech"]


def test_section_cap_keeps_the_newest_of_each_section() -> None:
    issue = compose(
        "w", newsletter(section_max_items=1), ARTICLES, number=1, issue_date=date.today()
    )
    assert titles(issue)[:2] == [("Europe", ["europe-new"]), ("Asia", ["asia-new"])]
    assert len(issue.items) == 5


def test_top_story_is_newest_of_first_section_and_not_repeated() -> None:
    issue = compose("w", newsletter(top_story=True), ARTICLES, number=1, issue_date=date.today())
    assert issue.top is not None and issue.top.title == "europe-new"
    assert titles(issue)[0] == ("Europe", ["europe-old"])
    assert issue.items[0].title == "europe-new"
    assert [i.title for i in issue.items].count("europe-new") == 1


def test_top_story_alone_in_its_section_removes_the_empty_section() -> None:
    issue = compose(
        "w",
        newsletter(top_story=True, section_max_items=1),
        ARTICLES,
        number=1,
        issue_date=date.today(),
    )
    assert issue.top is not None and issue.top.title == "europe-new"
    assert titles(issue)[0] == ("Asia", ["asia-new"])


def test_feed_summary_is_the_fallback() -> None:
    bare = Article(url="https://n.example/x", headline="x", section="Asia")
    issue = compose(
        "w",
        newsletter(),
        [bare],
        number=1,
        issue_date=date.today(),
        feed_summaries={bare.url: "From the feed."},
    )
    assert issue.items[0].summary == "From the feed."


OFFERED = ("Europe", "Asia", "Technology")  # what the preferences page lets readers choose


@pytest.mark.parametrize(
    "wanted",
    [{"Europe"}, {"asia"}, {"Asia", "Technology"}, {"Technology"}, {"Economy"}, set()],
)
def test_a_readers_cut_is_the_issue_composed_from_their_sections_alone(wanted: set[str]) -> None:
    # "Economy" and unsectioned items cannot be chosen, so every reader keeps them.
    settings = newsletter(top_story=True)
    full = compose("w", settings, ARTICLES, number=2, issue_date=date(2026, 11, 10))
    chosen = {w.casefold() for w in wanted}
    offered = {o.casefold() for o in OFFERED}
    theirs = [
        a
        for a in ARTICLES
        if (a.section or UNSECTIONED).casefold() in chosen
        or (a.section or UNSECTIONED).casefold() not in offered
    ]
    alone = compose("w", settings, theirs, number=2, issue_date=date(2026, 11, 10))
    assert restrict(full, wanted, OFFERED) == alone


def test_the_top_story_stays_for_a_reader_who_wants_its_section() -> None:
    full = compose("w", newsletter(top_story=True), ARTICLES, number=1, issue_date=date.today())
    cut = restrict(full, {"EUROPE"}, OFFERED)
    assert cut.top == full.top
    assert titles(cut) == [
        ("Europe", ["europe-old"]),
        ("Economy", ["economy"]),
        (UNSECTIONED, ["nosection"]),
    ]


def test_without_the_top_storys_section_their_first_sections_newest_leads() -> None:
    full = compose("w", newsletter(top_story=True), ARTICLES, number=1, issue_date=date.today())
    cut = restrict(full, {"Technology", "Asia"}, OFFERED)
    assert cut.top is not None and cut.top.title == "asia-new"
    assert section_of(cut.top) == "Asia"
    assert titles(cut)[0] == ("Asia", ["asia-old", "asia-undated"])
    assert "europe-new" not in [i.title for i in cut.items]


def test_an_issue_without_a_top_story_gets_none_in_a_cut() -> None:
    full = compose("w", newsletter(), ARTICLES, number=1, issue_date=date.today())
    cut = restrict(full, {"Asia"}, OFFERED)
    assert cut.top is None
    assert titles(cut) == [
        ("Asia", ["asia-new", "asia-old", "asia-undated"]),
        ("Economy", ["economy"]),
        (UNSECTIONED, ["nosection"]),
    ]


def test_wanting_everything_offered_is_the_issue_itself() -> None:
    full = compose("w", newsletter(top_story=True), ARTICLES, number=1, issue_date=date.today())
    assert restrict(full, {"asia", "europe", "technology"}, OFFERED) is full


def test_wanting_only_what_the_issue_lacks_leaves_no_item() -> None:
    only_asia = [a for a in ARTICLES if a.section == "Asia"]
    full = compose("w", newsletter(top_story=True), only_asia, number=1, issue_date=date.today())
    assert restrict(full, {"Europe"}, OFFERED).items == ()
