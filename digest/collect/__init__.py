"""Collection: from a newsletter's sources to the article pages not seen before.

``collect`` reads every source concurrently through one ``Fetcher``; each source has
its own deadline, and a source that fails is reported in its ``SourceReport`` while
the others go on. Pages already in the store (``known``, asked once per source with
the canonical URLs and feed GUIDs it lists) are not fetched again, and an article
listed by two sources is fetched once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence, Set
from dataclasses import dataclass
from datetime import datetime

from ..config import SourceConfig
from ..errors import SourceError, SourceGone
from ..extract.css import unmatched
from ..models import Page
from ..urls import canonical_url, is_http, to_url
from .feeds import Entry, Listing, looks_binary, parse_feed
from .fetch import Fetcher, Response, Rules
from .listing import parse_listing
from .sitemaps import read_sitemap


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one source gave: entries listed, new ones, pages fetched, and the problems met.

    ``errors`` are failures (the source itself, or one page each); ``warnings`` are
    things read around (a malformed feed, pages left for the next run). ``gone`` is
    true when the server answered 410 for the source itself.
    """

    source: str
    listed: int = 0
    new: int = 0
    fetched: int = 0
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    gone: bool = False
    unchanged: bool = False

    @property
    def line(self) -> str:
        """One sentence for the run report."""
        if self.gone:
            return f"{self.source}: gone (HTTP 410); remove it from schedules.yaml"
        if self.errors and not self.listed:
            return f"{self.source}: failed: {self.errors[0].removeprefix(self.source + ': ')}"
        parts = [f"{self.listed} listed", f"{self.new} new", f"{self.fetched} fetched"]
        if self.unchanged:
            parts.append("unchanged since last run")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning(s)")
        return f"{self.source}: " + ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Collected:
    """Pages fetched from all sources of a newsletter, and a report per source."""

    pages: tuple[Page, ...]
    reports: tuple[SourceReport, ...]
    #: Canonical links and GUIDs of every entry the sources list now, known or new.
    listed: frozenset[str] = frozenset()


def rules_of(source: SourceConfig) -> Rules:
    """The fetching rules a source's settings ask for."""
    return Rules(
        allow_private_networks=source.allow_private_networks,
        robots=source.robots,
        per_host=source.per_host,
    )


async def _list(
    source: SourceConfig, fetcher: Fetcher, since: datetime | None
) -> tuple[Listing, bool]:
    """The source's listing, and whether the server said it is unchanged (304)."""
    url = to_url(source.location)
    rules = rules_of(source)
    if source.kind == "sitemap":
        unchanged = True

        async def fetch(where: str) -> Response:
            nonlocal unchanged
            if not _may_follow(where, url):
                raise SourceError(where, "a sitemap on the web may not point at local files")
            response = await fetcher.get(where, rules, conditional=True)
            unchanged = unchanged and response.not_modified
            return response

        listing = await read_sitemap(url, fetch, since=since, max_bytes=fetcher.max_bytes)
        return listing, unchanged
    response = await fetcher.get(url, rules, conditional=True)
    parsed_with = source.selector or "" if source.kind == "listing" else ""
    if response.not_modified and response.listing is not None:
        saved = Listing.from_json(response.listing, parsed_with)
        if saved is not None:  # unchanged since it was parsed: a 304 costs nothing more
            return saved, True
    if source.kind == "feed":
        listing = parse_feed(response.body, response.url, response.content_type)
    else:
        listing = parse_listing(response.body, response.url, source.selector)
    if fetcher.cache is not None and is_http(url):
        fetcher.cache.save_listing(url, listing.to_json(parsed_with))
    return listing, response.not_modified


def _may_follow(link: str, source_url: str) -> bool:
    """A link a source gives is fetched when it is on the web, or when the source itself
    is local: a feed on the web must not make digest read this machine's files."""
    return is_http(link) or not is_http(source_url)


async def _page(entry: Entry, source: SourceConfig, fetcher: Fetcher) -> Page:
    response = await fetcher.get(entry.url, rules_of(source))
    binary = looks_binary(response.body, response.content_type)
    if binary:
        raise SourceError(entry.url, f"is {binary}, not an article page")
    return Page(
        url=entry.url,
        final_url=response.url,
        body=response.body,
        content_type=response.content_type,
        hints=entry.hints,
        source=source.location,
        corrections=source.corrections,
    )


def _unmatched_corrections(name: str, pages: list[Page]) -> list[str]:
    """A warning for each of the source's ``extract:`` selectors that matched nothing on
    some of this run's pages: a site's redesign must not silently switch them off."""
    misses: dict[str, list[str]] = {}
    for page in pages:
        for selector in unmatched(page):
            misses.setdefault(selector, []).append(page.url)
    return [
        f"{name}: extract {selector} matched nothing on {len(urls)} of {len(pages)} page(s) "
        f"(e.g. {urls[0]}); check it against the site's pages"
        for selector, urls in misses.items()
    ]


async def _collect_source(
    source: SourceConfig,
    fetcher: Fetcher,
    known: Callable[[Collection[str]], Set[str]],
    claimed: set[str],
    since: datetime | None,
) -> tuple[list[Page], SourceReport, set[str]]:
    name = source.location
    loop = asyncio.get_running_loop()
    end = loop.time() + source.deadline
    try:
        async with asyncio.timeout_at(end):
            listing, unchanged = await _list(source, fetcher, since)
    except SourceGone as exc:
        reason = f"{exc}; remove the source from schedules.yaml"
        return [], SourceReport(source=name, errors=(reason,), gone=True), set()
    except SourceError as exc:
        return [], SourceReport(source=name, errors=(str(exc),)), set()
    except TimeoutError:
        reason = f"{name}: did not answer within the source's deadline of {source.deadline:g} s"
        return [], SourceReport(source=name, errors=(reason,)), set()
    warnings = list(listing.warnings)
    fresh: list[Entry] = []
    url = to_url(source.location)
    local = [e.url for e in listing.entries if not _may_follow(e.url, url)]
    if local:
        warnings.append(
            f"{name}: {len(local)} link(s) to local files skipped ({local[0]}); "
            "a source on the web may only link to the web"
        )
    entries = [e for e in listing.entries if _may_follow(e.url, url)]
    keyed = [(entry, canonical_url(entry.url), entry.hints.guid) for entry in entries]
    listed = {key for _, key, _ in keyed} | {guid for _, _, guid in keyed if guid}
    in_store = known(listed) if listed else set()
    for entry, key, guid in keyed:
        # The same article listed by two sources (or twice by one) is fetched once.
        if key in claimed or (guid and guid in claimed):
            continue
        if key in in_store or (guid and guid in in_store):
            continue
        claimed.add(key)
        if guid:
            claimed.add(guid)
        fresh.append(entry)
    new = len(fresh)
    if new > source.max_articles:
        warnings.append(
            f"{name}: {new} new articles listed; fetched the first {source.max_articles} "
            "(max_articles), the rest wait for the next run"
        )
        fresh = fresh[: source.max_articles]
    tasks = [asyncio.create_task(_page(entry, source, fetcher)) for entry in fresh]
    errors: list[str] = []
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, end - loop.time()))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            errors.append(
                f"{name}: the source's deadline of {source.deadline:g} s ended "
                f"{len(pending)} page fetch(es); they will be tried next run"
            )
    pages = []
    for task in tasks:
        if task.cancelled():
            continue
        failure = task.exception()
        if failure is None:
            pages.append(task.result())
        elif isinstance(failure, SourceError):
            errors.append(str(failure))
        else:
            raise failure
    warnings.extend(_unmatched_corrections(name, pages))
    report = SourceReport(
        source=name,
        listed=len(listing.entries),
        new=new,
        fetched=len(pages),
        errors=tuple(errors),
        warnings=tuple(warnings),
        unchanged=unchanged,
    )
    return pages, report, listed


async def collect(
    sources: Sequence[SourceConfig],
    fetcher: Fetcher,
    *,
    known: Callable[[Collection[str]], Set[str]] = lambda _keys: set(),
    since: datetime | None = None,
) -> Collected:
    """Fetch the new article pages of every source. ``known(keys)`` returns those of
    the canonical URLs and GUIDs given that the store already has; ``since`` (the
    last issue's time) limits sitemaps to URLs dated after it."""
    claimed: set[str] = set()
    results = await asyncio.gather(
        *(_collect_source(source, fetcher, known, claimed, since) for source in sources)
    )
    return Collected(
        pages=tuple(page for pages, _, _ in results for page in pages),
        reports=tuple(report for _, report, _ in results),
        listed=frozenset(key for _, _, keys in results for key in keys),
    )
