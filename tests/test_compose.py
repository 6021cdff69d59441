"""Composition: section order, newest first, caps, top story."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from digest.compose import UNSECTIONED, compose
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
