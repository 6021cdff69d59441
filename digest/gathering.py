"""Collect and extract: the new pages of a newsletter's sources become articles in the
store, and the newsletter's unsent articles come back for composing."""

from __future__ import annotations

import httpx

from .collect import SourceReport, collect
from .collect.cache import HttpCache
from .collect.fetch import Fetcher
from .config import Config, NewsletterConfig
from .errors import ExtractError
from .extract import extract
from .models import Article
from .store import Store, articles, issues
from .urls import canonical_url


def fetcher(config: Config, store: Store, transport: httpx.AsyncBaseTransport | None) -> Fetcher:
    """The fetcher of one collection: the store's HTTP cache, the config's User-Agent;
    with an injected ``transport`` (tests) no address guard, as nothing leaves it."""
    client = None
    if transport is not None:
        client = httpx.AsyncClient(transport=transport, follow_redirects=True)
    return Fetcher(
        client,
        user_agent=config.http_user_agent,
        cache=HttpCache(store),
        check_addresses=transport is None,
    )


async def gather(
    config: Config,
    store: Store,
    name: str,
    newsletter: NewsletterConfig,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[list[tuple[int, Article]], tuple[SourceReport, ...], tuple[str, ...]]:
    """Collect and extract new pages into the store; return the newsletter's unsent
    articles (id, article) that its sources list now, the source reports and the
    extraction problems (one sentence per page that could not be read)."""
    since = issues.last_made(store, name)  # sitemaps list only what is newer
    async with fetcher(config, store, transport) as fetch:
        collected = await collect(
            newsletter.sources, fetch, known=lambda keys: articles.known(store, keys), since=since
        )
    problems: list[str] = []
    found: list[articles.Found] = []
    for page in collected.pages:
        try:
            article = extract(page)
        except ExtractError as exc:
            problems.append(str(exc))
            continue
        found.append(articles.Found(article, page.hints.guid, canonical_url(page.url)))
    articles.add(store, found)
    unsent = articles.unsent(store, name, collected.listed)
    return unsent, collected.reports, tuple(problems)
