"""Collection: from a newsletter's sources to the article pages not seen before.

``collect`` reads every source concurrently; a source that fails is reported in its
``SourceReport`` and the others go on. Pages already in the store (``is_known``) are
not fetched again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..config import SourceConfig
from ..errors import SourceError
from ..models import Page
from ..urls import canonical_url, to_url
from .feeds import Entry, parse_feed
from .fetch import Fetcher, Response


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one source gave: entries listed, pages fetched, and the problems met."""

    source: str
    listed: int = 0
    fetched: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Collected:
    """Pages fetched from all sources of a newsletter, and a report per source."""

    pages: tuple[Page, ...]
    reports: tuple[SourceReport, ...]
    #: Canonical links and GUIDs of every entry the sources list now, known or new.
    listed: frozenset[str] = frozenset()


async def _entries(source: SourceConfig, fetcher: Fetcher) -> list[Entry]:
    url = to_url(source.location)
    if source.kind != "feed":
        raise SourceError(source.location, f"{source.kind} sources are not supported yet")
    response = await fetcher.get(url)
    return parse_feed(response.body, response.url)


async def _page(entry: Entry, source: str, fetcher: Fetcher) -> Page:
    response: Response = await fetcher.get(entry.url)
    return Page(
        url=entry.url,
        final_url=response.url,
        body=response.body,
        content_type=response.content_type,
        hints=entry.hints,
        source=source,
    )


async def _collect_source(
    source: SourceConfig,
    fetcher: Fetcher,
    is_known: Callable[[str], bool],
    claimed: set[str],
) -> tuple[list[Page], SourceReport, set[str]]:
    name = source.location
    try:
        entries = await _entries(source, fetcher)
    except SourceError as exc:
        return [], SourceReport(source=name, errors=(str(exc),)), set()
    fresh = []
    listed: set[str] = set()
    for entry in entries:
        key = canonical_url(entry.url)
        listed.add(key)
        if entry.hints.guid:
            listed.add(entry.hints.guid)
        # The same article listed by two sources is fetched once.
        if key in claimed or is_known(key) or (entry.hints.guid and is_known(entry.hints.guid)):
            continue
        claimed.add(key)
        fresh.append(entry)
    results = await asyncio.gather(
        *(_page(entry, name, fetcher) for entry in fresh), return_exceptions=True
    )
    pages = [r for r in results if isinstance(r, Page)]
    errors = tuple(str(r) for r in results if isinstance(r, SourceError))
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, SourceError):
            raise result
    report = SourceReport(source=name, listed=len(entries), fetched=len(pages), errors=errors)
    return pages, report, listed


async def collect(
    sources: Sequence[SourceConfig],
    fetcher: Fetcher,
    *,
    is_known: Callable[[str], bool] = lambda _key: False,
) -> Collected:
    """Fetch the new article pages of every source; ``is_known(canonical_url_or_guid)``
    tells which articles the store already has."""
    claimed: set[str] = set()
    results = await asyncio.gather(
        *(_collect_source(source, fetcher, is_known, claimed) for source in sources)
    )
    return Collected(
        pages=tuple(page for pages, _, _ in results for page in pages),
        reports=tuple(report for _, report, _ in results),
        listed=frozenset(key for _, _, keys in results for key in keys),
    )
