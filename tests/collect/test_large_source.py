"""A sitemap of 100,000 entries (issue 12, item 7): every query that takes one bind
parameter per URL or id is asked in chunks, so neither SQLite (32,766 parameters a
statement) nor PostgreSQL (65,535) is asked for more, and the run goes out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.cli import main
from digest.config import load_config
from digest.store import Store, articles, issues
from tests.support.email_samples import STORIES, make_site

ENTRIES = 100_000
NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'


def large_sitemap(site: Path) -> None:
    """sitemap.xml: an index of two sitemaps of 50,000 entries (the protocol's most a
    file may list), the site's three stories (newest) and 99,997 older pages."""
    urls = [
        f"<url><loc>{slug}.html</loc><lastmod>2026-11-20</lastmod></url>" for slug, *_ in STORIES
    ]
    urls += [
        f"<url><loc>a/{n}.html</loc><lastmod>2019-01-01</lastmod></url>"
        for n in range(ENTRIES - len(urls))
    ]
    children = []
    for part in range(2):
        chunk = urls[part * 50_000 : (part + 1) * 50_000]
        (site / f"sitemap{part}.xml").write_text(
            f"<urlset {NS}>" + "".join(chunk) + "</urlset>", encoding="utf-8"
        )
        children.append(f"<sitemap><loc>sitemap{part}.xml</loc></sitemap>")
    (site / "sitemap.xml").write_text(
        f"<sitemapindex {NS}>" + "".join(children) + "</sitemapindex>", encoding="utf-8"
    )


@pytest.fixture
def big_site(tmp_path: Path, database_url: str) -> Path:
    site = make_site(tmp_path)
    large_sitemap(site)
    config = site / "schedules.yaml"
    config.write_text(
        config.read_text()
        .replace("sqlite:///digest.db", database_url)
        .replace(
            "sources: [{feed: feed.xml}]", "sources: [{sitemap: sitemap.xml, max_articles: 3}]"
        )
    )
    assert (
        main(
            ["--config", str(config), "subscribers", "import", "readers", str(site / "readers.csv")]
        )
        == 0
    )
    return config


def test_a_sitemap_of_100000_entries_is_sent(big_site: Path) -> None:
    assert main(["--config", str(big_site), "run", "weekly"]) == 0
    store = Store(load_config(big_site).database_url)
    sent = issues.find(store, "weekly", 1)
    assert sent is not None and sent.items == len(STORIES)


def test_store_queries_take_100000_keys(database_url: str) -> None:
    store = Store(database_url)
    names = [f"https://example.test/archive/{n}" for n in range(ENTRIES)]
    assert articles.known(store, names) == set()
    assert articles.unsent(store, "weekly", names) == []
    assert articles.collected_since(store, range(ENTRIES), datetime(2000, 1, 1, tzinfo=UTC)) == 0
