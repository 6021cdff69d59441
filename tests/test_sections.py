"""Which issue a reader who chose sections gets: the variants ``SectionedFactory`` asks
to be rendered, checked on the ``Issue`` values it hands to the renderer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from digest.errors import NothingWanted
from digest.models import Issue, Item, Section, Subscriber
from digest.sections import SectionedFactory


def item(title: str, section: str) -> Item:
    return Item(title=title, summary="", url=f"https://news.example.org/{title}", section=section)


ISSUE = Issue(
    newsletter="weekly",
    title="Weekly",
    number=3,
    date=date(2026, 11, 23),
    # Europe had one item, which became the top story, so Europe has no section left.
    top=item("europe-1", "Europe"),
    sections=(
        Section("Climate", (item("climate-1", "Climate"), item("climate-2", "Climate"))),
        Section("Asia", (item("asia-1", "Asia"),)),
        Section("More stories", (item("other-1", ""),)),
    ),
)


class Recorder:
    """Stands in for a MessageFactory: ``build`` returns the issue it was made for."""

    def __init__(self, issue: Issue) -> None:
        self.issue = issue

    def build(self, subscriber: Subscriber) -> Any:
        return self.issue


def variant(wanted: set[str]) -> Any:
    """The issue the factory hands a reader who wants ``wanted`` (what ``Recorder`` builds)."""
    default = Recorder(ISSUE)
    factory = SectionedFactory(
        default,
        ISSUE,
        ["Europe", "Climate", "Asia"],
        {1: frozenset(wanted)},
        Recorder,
    )
    return factory.build(Subscriber(id=1, email="reader@example.org"))


def shape(issue: Issue) -> tuple[str | None, list[tuple[str, list[str]]]]:
    return (
        issue.top.title if issue.top else None,
        [(s.name, [i.title for i in s.items]) for s in issue.sections],
    )


def test_the_top_storys_section_alone_still_gets_the_top_story() -> None:
    assert shape(variant({"Europe"})) == (
        "europe-1",
        [("More stories", ["other-1"])],  # sections nobody could choose are kept
    )


def test_without_the_top_storys_section_the_first_wanted_section_gives_the_top() -> None:
    assert shape(variant({"Climate", "Asia"})) == (
        "climate-1",
        [("Climate", ["climate-2"]), ("Asia", ["asia-1"]), ("More stories", ["other-1"])],
    )


def test_a_promoted_top_story_leaves_no_empty_section() -> None:
    assert shape(variant({"Asia"})) == ("asia-1", [("More stories", ["other-1"])])


def test_wanting_every_section_gets_the_issue_as_rendered() -> None:
    assert variant({"Europe", "Climate", "Asia"}) is ISSUE


def test_wanting_only_sections_absent_from_the_issue_sends_nothing() -> None:
    issue = Issue(
        "weekly", "Weekly", 3, date(2026, 11, 23), (Section("Asia", (item("a", "Asia"),)),)
    )
    factory = SectionedFactory(
        Recorder(issue), issue, ["Asia", "Sport"], {1: frozenset({"Sport"})}, Recorder
    )
    with pytest.raises(NothingWanted, match="wants none of the sections"):
        factory.build(Subscriber(id=1, email="reader@example.org"))


def test_each_distinct_variant_is_made_once_and_readers_without_a_choice_share_the_default() -> (
    None
):
    made: list[Issue] = []

    def make(issue: Issue) -> Recorder:
        made.append(issue)
        return Recorder(issue)

    wanted = {1: frozenset({"Asia"}), 2: frozenset({"asia"}), 3: frozenset({"Climate"})}
    factory = SectionedFactory(Recorder(ISSUE), ISSUE, ["Europe", "Climate", "Asia"], wanted, make)
    got: list[Any] = [
        factory.build(Subscriber(id=n, email=f"r{n}@example.org")) for n in (1, 2, 3, 4)
    ]
    assert len(made) == 2  # Asia (chosen twice, in two spellings) and Climate
    assert got[0] is got[1] is made[0]
    assert shape(got[2]) == (
        "climate-1",
        [("Climate", ["climate-2"]), ("More stories", ["other-1"])],
    )
    assert got[3] is ISSUE  # reader 4 chose nothing
