"""Collecting whole sources against a real HTTP server on 127.0.0.1: bad sources end in
one clear report line each and never stop the others; dedupe across sources and
runs; conditional GET; the pipeline never puts an article in two issues."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from digest.collect import SourceReport, collect
from digest.collect.cache import HttpCache
from digest.collect.fetch import Fetcher
from digest.config import SourceConfig, load_config
from digest.pipeline import Pipeline
from digest.store import Store
from tests.support.collect_server import Site


def article(title: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><title>{title} | Test Site</title></head><body>"
        f"<article><h1>{title}</h1><p>{title} is the first paragraph of this article, "
        "long enough to count as a real lead for the reader of the digest.</p></article>"
        "</body></html>"
    )


def rss(site: Site, *slugs: str, guids: dict[str, str] | None = None) -> str:
    items = []
    for slug in slugs:
        guid = (guids or {}).get(slug)
        items.append(
            f"<item><title>Story {slug}</title><link>{site.url('/a/' + slug)}</link>"
            + (f"<guid isPermaLink='false'>{guid}</guid>" if guid else "")
            + f"<description>Summary of {slug}.</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>{site.base}/</link>{''.join(items)}</channel></rss>"
    )


def serve_articles(site: Site, *slugs: str) -> None:
    for slug in slugs:
        site.text(f"/a/{slug}", article(f"Story {slug}"))


def source(site: Site, path: str, **settings) -> SourceConfig:
    kind = settings.pop("kind", "feed")
    settings.setdefault("allow_private_networks", True)
    settings.setdefault("robots", False)
    return SourceConfig.model_validate({kind: site.url(path), **settings})


def fetcher(**kwargs) -> Fetcher:
    return Fetcher(backoff=0.01, retries=1, **kwargs)


def by_source(reports: tuple[SourceReport, ...], site: Site, path: str) -> SourceReport:
    return next(r for r in reports if r.source == site.url(path))


async def test_every_bad_source_gets_one_clear_line_and_the_good_one_still_counts(
    site: Site,
) -> None:
    site.text("/good.xml", rss(site, "one", "two"), content_type="application/rss+xml")
    serve_articles(site, "one", "two")
    site.text("/gone.xml", "gone", status=410)
    site.text("/home.html", "<!DOCTYPE html><html><body>front page</body></html>")
    site.text("/logo.xml", b"\x89PNG\r\n\x1a\n" + bytes(100), content_type="image/png")

    async def drip(_request: Request) -> Response:
        async def forever():
            while True:
                yield b"<"
                await asyncio.sleep(0.05)

        return StreamingResponse(forever(), media_type="application/rss+xml")

    site.route("/drip.xml", drip)

    async def loop(_request: Request) -> Response:
        return RedirectResponse("/loop.xml", status_code=301)

    site.route("/loop.xml", loop)
    sources = [
        source(site, "/good.xml"),
        source(site, "/missing.xml"),
        source(site, "/gone.xml"),
        source(site, "/home.html"),
        source(site, "/logo.xml"),
        source(site, "/drip.xml", deadline=1),
        source(site, "/loop.xml"),
        source(site, "/good.xml", allow_private_networks=False, kind="sitemap"),
    ]
    async with fetcher() as f:
        collected = await collect(sources, f)
    reports = collected.reports
    assert len(collected.pages) == 2
    assert by_source(reports, site, "/good.xml").line == (
        f"{site.url('/good.xml')}: 2 listed, 2 new, 2 fetched"
    )
    lines = {r.source.rsplit("/", 1)[-1]: r.line for r in reports[1:]}
    assert (
        lines["missing.xml"] == f"{site.url('/missing.xml')}: failed: the server answered HTTP 404"
    )
    assert lines["gone.xml"].endswith("gone (HTTP 410); remove it from schedules.yaml")
    gone = by_source(reports, site, "/gone.xml")
    assert gone.gone and gone.errors[0].endswith(
        "(HTTP 410); remove the source from schedules.yaml"
    )
    assert "is an HTML page, not a feed" in lines["home.html"]
    assert "is binary content (image/png), not a feed" in lines["logo.xml"]
    assert "did not answer within the source's deadline of 1 s" in lines["drip.xml"]
    assert "redirect loop" in lines["loop.xml"]
    refused = reports[-1].line
    assert "refused: '127.0.0.1' resolves to 127.0.0.1, a loopback address" in refused
    assert "set 'allow_private_networks: true' on the source" in refused


async def test_a_page_that_drips_forever_is_ended_by_the_deadline_and_the_rest_kept(
    site: Site,
) -> None:
    site.text("/feed.xml", rss(site, "quick", "slow"))
    serve_articles(site, "quick")

    async def drip(_request: Request) -> Response:
        async def forever():
            yield b"<html><body><p>"
            while True:
                await asyncio.sleep(0.05)
                yield b"."

        return StreamingResponse(forever(), media_type="text/html")

    site.route("/a/slow", drip)
    async with fetcher() as f:
        collected = await collect([source(site, "/feed.xml", deadline=1.5)], f)
    (report,) = collected.reports
    assert [p.url for p in collected.pages] == [site.url("/a/quick")]
    assert report.fetched == 1
    assert "deadline of 1.5 s ended 1 page fetch(es)" in report.errors[0]


async def test_binary_and_missing_article_pages_are_reported_per_page(site: Site) -> None:
    site.text("/feed.xml", rss(site, "fine", "image", "lost"))
    serve_articles(site, "fine")
    site.text("/a/image", b"GIF89a\x01\x00\x01\x00\x00\x00\x00", content_type="image/gif")
    async with fetcher() as f:
        collected = await collect([source(site, "/feed.xml")], f)
    (report,) = collected.reports
    assert report.line == f"{site.url('/feed.xml')}: 3 listed, 3 new, 1 fetched, 2 failed"
    assert any("is binary content (image/gif), not an article page" in e for e in report.errors)
    assert any("HTTP 404" in e for e in report.errors)


async def test_a_web_feed_cannot_make_digest_read_local_files(site: Site, tmp_path: Path) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("<html><body><h1>Private</h1><p>Not for the newsletter.</p></body></html>")
    feed = rss(site, "public").replace(
        "</channel>", f"<item><title>Leak</title><link>{secret.as_uri()}</link></item></channel>"
    )
    site.text("/feed.xml", feed)
    serve_articles(site, "public")
    async with fetcher() as f:
        collected = await collect([source(site, "/feed.xml")], f)
    assert [p.url for p in collected.pages] == [site.url("/a/public")]
    assert "1 link(s) to local files skipped" in collected.reports[0].warnings[0]


async def test_a_web_sitemap_index_cannot_point_at_local_files(site: Site, tmp_path: Path) -> None:
    local = tmp_path / "local.xml"
    local.write_text(
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<url><loc>https://elsewhere.example/2026/11/a-b-c</loc></url></urlset>"
    )
    site.text(
        "/index.xml",
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{local.as_uri()}</loc></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    async with fetcher() as f:
        collected = await collect([source(site, "/index.xml", kind="sitemap")], f)
    (report,) = collected.reports
    assert report.listed == 0
    assert "a sitemap on the web may not point at local files" in report.warnings[0]


async def test_the_same_article_from_two_sources_is_fetched_once(site: Site) -> None:
    site.text("/a.xml", rss(site, "shared", "only-a", guids={"only-a": "guid-7"}))
    # The second feed lists the shared story with tracking parameters and upper-case
    # host, and another story under a different URL but the same GUID.
    other = rss(site, "only-b", guids={"only-b": "guid-7"}).replace(
        "</channel>",
        f"<item><title>Shared</title><link>http://127.0.0.1:{site.port}/a/shared"
        "?utm_source=x&amp;fbclid=abc#top</link></item></channel>",
    )
    site.text("/b.xml", other)
    serve_articles(site, "shared", "only-a", "only-b")
    async with fetcher() as f:
        collected = await collect([source(site, "/a.xml"), source(site, "/b.xml")], f)
    assert sorted(p.url.rsplit("/", 1)[-1] for p in collected.pages) == ["only-a", "shared"]
    assert site.count("/a/shared") == 1
    assert site.count("/a/only-b") == 0
    assert {site.url("/a/shared"), "guid-7"} <= collected.listed


async def test_known_articles_are_not_fetched_again(site: Site) -> None:
    site.text("/feed.xml", rss(site, "old", "new", guids={"old": "g-old"}))
    serve_articles(site, "old", "new")
    async with fetcher() as f:
        collected = await collect(
            [source(site, "/feed.xml")], f, known=lambda keys: {"g-old"} & set(keys)
        )
    assert [p.url for p in collected.pages] == [site.url("/a/new")]
    assert site.count("/a/old") == 0
    assert collected.reports[0].line.endswith("2 listed, 1 new, 1 fetched")


async def test_max_articles_leaves_the_rest_for_the_next_run(site: Site) -> None:
    slugs = [f"s{n}" for n in range(5)]
    site.text("/feed.xml", rss(site, *slugs))
    serve_articles(site, *slugs)
    async with fetcher() as f:
        collected = await collect([source(site, "/feed.xml", max_articles=2)], f)
    assert len(collected.pages) == 2
    assert "5 new articles listed; fetched the first 2" in collected.reports[0].warnings[0]


async def test_a_sitemap_and_a_listing_page_over_http(site: Site) -> None:
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url('/a/from-the-sitemap')}</loc><lastmod>2026-11-20</lastmod></url>"
        "</urlset>"
    )
    site.text("/sitemap.xml.gz", gzip.compress(sitemap.encode()), content_type="application/x-gzip")
    site.text(
        "/section",
        '<html><body><a href="/a/from-the-listing-page">Listed</a>'
        '<a href="/tag/things">Tag</a></body></html>',
    )
    serve_articles(site, "from-the-sitemap", "from-the-listing-page")
    sources = [
        source(site, "/sitemap.xml.gz", kind="sitemap"),
        source(site, "/section", kind="listing"),
    ]
    async with fetcher() as f:
        collected = await collect(sources, f)
    assert sorted(p.url.rsplit("/", 1)[-1] for p in collected.pages) == [
        "from-the-listing-page",
        "from-the-sitemap",
    ]
    listed = next(p for p in collected.pages if p.url.endswith("from-the-listing-page"))
    assert listed.hints.title == "Listed"  # the link text is a hint for the headline


async def test_an_unchanged_feed_costs_a_304_and_nothing_more(site: Site, store: Store) -> None:
    body = rss(site, "x1", "x2").encode()

    async def feed(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"f1"':
            return Response(status_code=304, headers={"ETag": '"f1"'})
        return Response(body, media_type="application/rss+xml", headers={"ETag": '"f1"'})

    site.route("/feed.xml", feed)
    serve_articles(site, "x1", "x2")
    known: set[str] = set()
    for _ in range(2):
        async with fetcher(cache=HttpCache(store)) as f:
            collected = await collect([source(site, "/feed.xml")], f, known=known.intersection)
        known.update(p.url for p in collected.pages)
    assert site.count("/a/x1") == 1 and site.count("/a/x2") == 1
    saved = HttpCache(store).get(site.url("/feed.xml"))
    assert saved is not None and saved.listing is not None
    assert [e["title"] for e in saved.listing["entries"]] == ["Story x1", "Story x2"]
    (report,) = collected.reports
    assert report.line.endswith("2 listed, 0 new, 0 fetched, unchanged since last run")
    assert collected.listed >= {site.url("/a/x1"), site.url("/a/x2")}


async def test_an_unchanged_listing_page_is_read_again_when_the_selector_changes(
    site: Site, store: Store
) -> None:
    page = (
        b'<html><body><div class="lead"><a href="/a/lead-story">Lead</a></div>'
        b'<div class="more"><a href="/a/other-story">Other</a></div></body></html>'
    )

    async def section(request: Request) -> Response:
        if request.headers.get("if-none-match") == '"s1"':
            return Response(status_code=304)
        return Response(page, media_type="text/html", headers={"ETag": '"s1"'})

    site.route("/section", section)
    serve_articles(site, "lead-story", "other-story")
    found = []
    for selector in (".lead", ".more"):
        async with fetcher(cache=HttpCache(store)) as f:
            collected = await collect(
                [source(site, "/section", kind="listing", selector=selector)], f
            )
        found.append([p.url.rsplit("/", 1)[-1] for p in collected.pages])
    assert found == [["lead-story"], ["other-story"]]
    assert [h.headers.get("if-none-match") for h in site.hits if h.path == "/section"] == [
        None,
        '"s1"',  # the page was not downloaded again, only parsed again with the new selector
    ]


# -- through the pipeline --------------------------------------------------------


def write_config(tmp_path: Path, site: Site) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "pipeline.db"}
contact_url: https://news.example.org/crawler
backends:
  local: {{type: outbox, path: outbox}}
newsletters:
  weekly:
    title: Weekly
    list: readers
    backend: local
    sources:
      - feed: {site.url("/feed.xml")}
        allow_private_networks: true
      - feed: {site.url("/again.xml")}
        allow_private_networks: true
"""
    )
    return path


async def test_pipeline_never_puts_an_article_in_two_issues(site: Site, tmp_path: Path) -> None:
    site.text("/feed.xml", rss(site, "first", "second"))
    site.text("/again.xml", rss(site, "second"))
    serve_articles(site, "first", "second", "third")
    config = load_config(write_config(tmp_path, site))
    store = Store(config.database_url)
    try:
        pipeline = Pipeline(config, store)
        newsletter = config.newsletter("weekly")
        built = await pipeline.build("weekly")
        assert built.issue is not None
        assert sorted(i.title for i in built.issue.items) == ["Story first", "Story second"]
        pipeline._record_issue("weekly", newsletter, built)
        assert site.hits[-1].headers["user-agent"].endswith("(+https://news.example.org/crawler)")

        again = await pipeline.build("weekly")
        assert again.issue is None  # both are still listed, both already went out

        site.text("/feed.xml", rss(site, "first", "second", "third"))
        third = await pipeline.build("weekly")
        assert third.issue is not None
        assert [i.title for i in third.issue.items] == ["Story third"]
        for slug in ("first", "second", "third"):
            assert site.count(f"/a/{slug}") == 1  # extracted once, never fetched again
    finally:
        store.close()


async def test_pipeline_reads_only_sitemap_urls_newer_than_the_last_issue(
    site: Site, tmp_path: Path
) -> None:
    def sitemap(*entries: tuple[str, str]) -> str:
        urls = "".join(
            f"<url><loc>{site.url('/a/' + slug)}</loc><lastmod>{day}</lastmod></url>"
            for slug, day in entries
        )
        return f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'

    path = tmp_path / "schedules.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp_path / "sitemap.db"}
backends:
  local: {{type: outbox, path: outbox}}
newsletters:
  weekly:
    title: Weekly
    list: readers
    backend: local
    sources:
      - sitemap: {site.url("/sitemap.xml")}
        allow_private_networks: true
"""
    )
    serve_articles(site, "first-one", "backdated", "fresh-one")
    site.text("/sitemap.xml", sitemap(("first-one", "2026-11-18")), content_type="application/xml")
    config = load_config(path)
    store = Store(config.database_url)
    try:
        pipeline = Pipeline(config, store, now=lambda: datetime(2026, 11, 20, 7, tzinfo=UTC))
        built = await pipeline.build("weekly")
        assert built.issue is not None
        assert [i.title for i in built.issue.items] == ["Story first-one"]
        pipeline._record_issue("weekly", config.newsletter("weekly"), built)
        site.text(
            "/sitemap.xml",
            sitemap(
                ("first-one", "2026-11-18"),
                ("backdated", "2026-11-19"),
                ("fresh-one", "2026-11-21T09:00:00Z"),
            ),
        )
        second = await pipeline.build("weekly")
        assert second.issue is not None
        assert [i.title for i in second.issue.items] == ["Story fresh-one"]
        assert site.count("/a/backdated") == 0  # older than issue #1: not even fetched
    finally:
        store.close()
