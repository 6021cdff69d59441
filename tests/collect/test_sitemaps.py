"""Sitemaps (index, plain, Google News, gzipped) and listing pages, read from local paths."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.collect.fetch import Fetcher
from digest.collect.listing import looks_like_article, parse_listing
from digest.collect.sitemaps import parse_sitemap, read_sitemap
from digest.errors import SourceError

SINCE = datetime(2026, 11, 10, tzinfo=UTC)
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def urlset(*urls: tuple[str, str | None], news: bool = False) -> str:
    rows = []
    for loc, date in urls:
        if news:
            rows.append(
                f"<url><loc>{loc}</loc><news:news><news:publication><news:name>Tidewater"
                f"</news:name><news:language>en</news:language></news:publication>"
                f"<news:publication_date>{date}</news:publication_date>"
                f"<news:title>Title of {loc.rsplit('/', 1)[-1]}</news:title></news:news></url>"
            )
        else:
            lastmod = f"<lastmod>{date}</lastmod>" if date else ""
            rows.append(f"<url><loc>{loc}</loc>{lastmod}</url>")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset {NS} {NEWS}>{"".join(rows)}</urlset>'


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A sitemap index (local files) with a plain, a gzipped news and an old child."""
    (tmp_path / "posts.xml").write_text(
        urlset(
            ("https://tidewater.example/2026/11/new-pier-opens", "2026-11-14"),
            ("https://tidewater.example/2026/10/old-pier-closes", "2026-10-02T08:00:00+00:00"),
            ("https://tidewater.example/pages/undated-guide", None),
        )
    )
    (tmp_path / "news.xml.gz").write_bytes(
        gzip.compress(
            urlset(
                ("https://tidewater.example/news/storm-surge-warning", "2026-11-18T06:00:00Z"),
                ("https://tidewater.example/news/harbour-dredging", "2026-11-01T06:00:00Z"),
                news=True,
            ).encode()
        )
    )
    (tmp_path / "archive.xml").write_text(
        urlset(("https://tidewater.example/2019/01/archived", "2019-01-01"))
    )
    (tmp_path / "index.xml").write_text(
        f'<?xml version="1.0"?><sitemapindex {NS}>'
        "<sitemap><loc>posts.xml</loc><lastmod>2026-11-14</lastmod></sitemap>"
        "<sitemap><loc>news.xml.gz</loc></sitemap>"
        "<sitemap><loc>archive.xml</loc><lastmod>2019-01-02</lastmod></sitemap>"
        "<sitemap><loc>missing.xml</loc></sitemap>"
        "</sitemapindex>"
    )
    return tmp_path


async def walk(root: Path, since: datetime | None, seen: list[str] | None = None):
    async with Fetcher() as fetcher:

        async def fetch(url: str):
            if seen is not None:
                seen.append(url.rsplit("/", 1)[-1])
            return await fetcher.get(url)

        return await read_sitemap(
            (root / "index.xml").as_uri(), fetch, since=since, max_bytes=fetcher.max_bytes
        )


async def test_index_walks_children_newer_than_since_newest_first(site: Path) -> None:
    seen: list[str] = []
    listing = await walk(site, SINCE, seen)
    assert [e.url.rsplit("/", 1)[-1] for e in listing.entries] == [
        "storm-surge-warning",
        "new-pier-opens",
        "undated-guide",  # no date: kept, the store's dedupe decides
    ]
    assert "archive.xml" not in seen  # its lastmod says nothing new: not fetched
    assert any("missing.xml: no such file" in w for w in listing.warnings)


async def test_google_news_title_and_date_become_hints(site: Path) -> None:
    listing = await walk(site, SINCE)
    storm = listing.entries[0]
    assert storm.hints.title == "Title of storm-surge-warning"
    assert storm.hints.published == datetime(2026, 11, 18, 6, tzinfo=UTC)


async def test_without_since_everything_is_listed(site: Path) -> None:
    listing = await walk(site, None)
    assert len(listing.entries) == 6


def test_malformed_sitemap_reads_what_parses() -> None:
    body = urlset(("https://t.example/2026/11/a-good-one", "2026-11-12")).replace("</urlset>", "")
    body += "<url><loc>https://t.example/2026/11/broken"
    doc = parse_sitemap(body.encode(), "https://t.example/sitemap.xml", 1_000_000)
    assert doc.entries[0].url == "https://t.example/2026/11/a-good-one"
    assert "the sitemap is malformed" in doc.warnings[0]


def test_html_and_other_xml_are_not_sitemaps() -> None:
    with pytest.raises(SourceError, match="HTML page, not a sitemap"):
        parse_sitemap(b"<!DOCTYPE html><html><body>hi</body></html>", "u", 1000)
    with pytest.raises(SourceError, match="root element is <rss>"):
        parse_sitemap(b"<rss version='2.0'><channel/></rss>", "u", 1000)


def test_gzipped_sitemap_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * 20_000_000)
    with pytest.raises(SourceError, match="decompresses to more than 100000 bytes"):
        parse_sitemap(bomb, "https://t.example/s.xml.gz", 100_000)


def test_entities_are_not_expanded() -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>https://t.example/2026/11/a-b-c&x;</loc></url></urlset>"
    )
    doc = parse_sitemap(xxe, "https://t.example/s.xml", 100_000)
    assert all("root:" not in e.url for e in doc.entries)


# -- listing pages ----------------------------------------------------------------

LISTING = """<!DOCTYPE html><html><head><title>World | Tidewater</title></head><body>
<nav><a href="/">Home</a> <a href="/world/">World</a> <a href="/tag/ports">Ports</a>
<a href="/author/jane-doe-smith">Jane</a> <a href="/subscribe">Subscribe</a></nav>
<main class="river">
  <article><a href="/world/2026/11/18/dredging-begins"><img src="/img/d.jpg" alt=""></a>
    <h2><a href="/world/2026/11/18/dredging-begins">Dredging begins in the outer harbour</a></h2></article>
  <article><h2><a href="https://www.tidewater.example/world/fishing-quotas-cut-again-this-winter?utm_source=home">
    Fishing quotas cut again</a></h2></article>
  <article><h2><a href="/world/story/88213">Coastguard drill at dawn</a></h2></article>
  <a href="/world/?page=2">More</a> <a href="/files/report-2026-annual.pdf">Report</a>
</main>
<aside class="promo"><a href="https://other-paper.example/2026/11/unrelated-story-here">Elsewhere</a></aside>
</body></html>"""


def test_default_listing_keeps_same_site_article_links_once() -> None:
    listing = parse_listing(LISTING.encode(), "https://tidewater.example/world/")
    assert [(e.url, e.hints.title) for e in listing.entries] == [
        (
            "https://tidewater.example/world/2026/11/18/dredging-begins",
            "Dredging begins in the outer harbour",
        ),
        (
            "https://www.tidewater.example/world/fishing-quotas-cut-again-this-winter?utm_source=home",
            "Fishing quotas cut again",
        ),
        ("https://tidewater.example/world/story/88213", "Coastguard drill at dawn"),
    ]


def test_selector_picks_the_links_it_matches() -> None:
    listing = parse_listing(LISTING.encode(), "https://tidewater.example/world/", "aside.promo")
    assert [e.url for e in listing.entries] == [
        "https://other-paper.example/2026/11/unrelated-story-here"
    ]


def test_selector_that_matches_nothing_warns_and_a_bad_one_fails() -> None:
    listing = parse_listing(LISTING.encode(), "https://tidewater.example/", "div.nothing")
    assert listing.entries == ()
    assert "the selector 'div.nothing' matched" in listing.warnings[0]
    with pytest.raises(SourceError, match="is not valid CSS"):
        parse_listing(LISTING.encode(), "https://tidewater.example/", "a[[")


def test_local_listing_page_links_to_local_articles(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    html = '<a href="articles/a-local-story-here.html">A local story</a><a href="about.html">x</a>'
    page.write_text(html)
    listing = parse_listing(page.read_bytes(), page.as_uri())
    assert [e.url for e in listing.entries] == [
        (tmp_path / "articles" / "a-local-story-here.html").as_uri()
    ]


@pytest.mark.parametrize(
    ("link", "article"),
    [
        ("https://t.example/2026/05/some-story", True),
        ("https://t.example/news/a-long-hyphenated-slug", True),
        ("https://t.example/story/123456", True),
        ("https://t.example/world/", False),
        ("https://t.example/tag/long-hyphenated-tag-name", False),
        ("https://t.example/img/a-b-c.jpg", False),
        ("https://elsewhere.example/2026/05/some-story", False),
    ],
)
def test_looks_like_article(link: str, article: bool) -> None:
    assert looks_like_article(link, "https://t.example/world/") is article
