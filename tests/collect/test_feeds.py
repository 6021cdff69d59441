"""Feed formats and bad feeds: RSS 0.91/1.0/2.0, Atom, JSON Feed 1.1, malformed XML,
wrong and undeclared charsets, HTML and binary where a feed was expected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from digest.collect.feeds import parse_feed
from digest.errors import SourceError
from tests.support import FIXTURES

FEEDS = FIXTURES / "feeds"
BASE = "https://feeds.example/feed"


def read(name: str, content_type: str = "") -> tuple:
    listing = parse_feed((FEEDS / name).read_bytes(), BASE, content_type)
    return listing.entries, listing.warnings


def test_rss_091_relative_links_resolve_against_the_feed_url() -> None:
    entries, warnings = read("rss091.xml")
    assert [e.url for e in entries] == [
        "https://harbour-gazette.example/news/ferry-winter-timetable",
        "https://feeds.example/news/lighthouse-cottage-museum",
    ]
    assert entries[1].hints.title == "Lighthouse keepers’ cottage to become a museum"
    assert warnings == ()


def test_rss_10_rdf_dates_and_subjects() -> None:
    (entry,), _ = read("rss10.rdf")
    assert entry.hints.published == datetime(2026, 11, 17, 5, 30, tzinfo=UTC)
    assert entry.hints.section == "Farming"
    assert entry.hints.summary == "Apple growers lost a fifth of the late harvest."


def test_rss_20_hints_guid_image_and_skipped_linkless_item() -> None:
    entries, warnings = read("rss20.xml", "application/rss+xml")
    tram, shop = entries
    assert tram.hints.guid == "meridian-8812"
    assert tram.hints.image == "https://meridian-weekly.example/img/tram.jpg"
    assert tram.hints.section == "Cities"
    assert tram.hints.published == datetime(2026, 11, 16, 7, 15, tzinfo=UTC)
    assert shop.hints.image == "https://meridian-weekly.example/img/shop.jpg"
    assert warnings == (f"{BASE}: 1 feed entry without a link was skipped",)


def test_atom_entry() -> None:
    (entry,), _ = read("atom.xml", "application/atom+xml")
    assert entry.url == "https://fjord-notes.example/posts/salmon-farms-offshore"
    assert entry.hints.guid == "tag:fjord-notes.example,2026:post-311"
    assert entry.hints.published == datetime(2026, 11, 18, 7, 45, tzinfo=UTC)
    assert entry.hints.section == "Environment"


def test_json_feed_11_items_and_external_url() -> None:
    entries, warnings = read("jsonfeed11.json", "application/feed+json")
    wind, herders = entries
    assert wind.hints.title == "A wind corridor across the steppe"
    assert wind.hints.published == datetime(2026, 11, 19, 4, tzinfo=timezone(timedelta(hours=6)))
    assert wind.hints.image == "https://steppe-dispatch.example/img/turbines.jpg"
    assert wind.hints.section == "Energy"
    assert wind.hints.guid == "sd-2026-0042"
    assert herders.url == "https://elsewhere.example/herders-and-drones"
    assert warnings == (f"{BASE}: 1 JSON Feed item without a link was skipped",)


def test_json_feed_recognised_without_a_content_type() -> None:
    entries, _ = read("jsonfeed11.json")
    assert len(entries) == 2


def test_json_that_is_not_a_feed() -> None:
    with pytest.raises(SourceError, match="not a JSON Feed"):
        parse_feed(b'{"hello": "world"}', BASE, "application/json")


def test_malformed_feed_keeps_what_parses_and_warns() -> None:
    entries, warnings = read("malformed.xml")
    assert [e.hints.title for e in entries][:2] == [
        "First story survives",
        "Second story & an unescaped ampersand",
    ]
    assert any("the feed is malformed" in w and "read as far as it parses" in w for w in warnings)


def test_wrong_declared_charset_is_overridden_with_a_warning() -> None:
    (entry,), warnings = read("latin1-declared-utf8.xml", "application/rss+xml")
    assert entry.hints.title == "Café owners in Malö protest the new terrace fee"
    assert "declared as utf-8" in warnings[0]


def test_undeclared_charset_is_guessed_with_a_warning() -> None:
    (entry,), warnings = read("latin1-undeclared.xml")
    assert entry.hints.summary == "Rådhuset says the fee pays for street cleaning."
    assert "declares no charset" in warnings[0]


def test_header_charset_wins_over_a_guess() -> None:
    body = (FEEDS / "latin1-undeclared.xml").read_bytes()
    listing = parse_feed(body, BASE, "application/rss+xml; charset=iso-8859-1")
    assert listing.entries[0].hints.title.startswith("Café owners in Malö")


def test_html_page_names_the_feed_it_links_to() -> None:
    with pytest.raises(SourceError) as error:
        read("page-with-feed-link.html", "text/html")
    assert str(error.value) == (
        f"{BASE}: is an HTML page, not a feed; the page names its feed at "
        "https://feeds.example/feeds/all.rss"
    )


def test_binary_content_is_not_a_feed() -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    with pytest.raises(SourceError, match=r"binary content \(image/png\), not a feed"):
        parse_feed(png, BASE, "image/png")
    with pytest.raises(SourceError, match="NUL bytes"):
        parse_feed(png, BASE, "")


def test_garbage_text_is_not_a_readable_feed() -> None:
    with pytest.raises(SourceError, match="is not a readable feed"):
        parse_feed(b"this is plain prose, not XML <<<", BASE, "text/plain")


def test_json_feed_dates_go_through_the_shared_date_parser() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "items": ['
        b'{"id": "1", "url": "https://a.example/1", "date_published": "Thu, 19 Nov 2026 04:00:00 +0600"},'
        b'{"id": "2", "url": "https://a.example/2", "date_published": "not a date",'
        b' "date_modified": "2026-11-20"}]}'
    )
    rfc2822, modified = parse_feed(body, BASE, "application/feed+json").entries
    assert rfc2822.hints.published == datetime(2026, 11, 19, 4, tzinfo=timezone(timedelta(hours=6)))
    assert modified.hints.published == datetime(2026, 11, 20, tzinfo=UTC)
