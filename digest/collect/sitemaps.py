"""Sitemaps: indexes, plain sitemaps, Google News sitemaps, gzipped or not.

``read_sitemap`` walks an index down to its sitemaps (children not modified since
``since`` are not fetched) and returns the article URLs newer than ``since``, newest
first. ``news:publication_date`` and ``news:title`` of a Google News sitemap become
hints; otherwise ``lastmod`` dates the URL. URLs with no date at all are kept: the
store's dedupe decides whether they are new. Malformed XML is read as far as lxml's
recovering parser gets, with a warning; a child sitemap that fails is a warning, the
others still count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from ..dates import parse_date
from ..errors import SourceError
from ..models import EntryHints
from ..urls import join_url
from .feeds import Entry, Listing, looks_binary, looks_html
from .fetch import Response, gunzip_capped

#: How deep indexes may nest (an index of indexes is allowed; more is a loop or abuse).
MAX_DEPTH = 3
#: Child sitemaps of one index fetched at most (big sites have thousands of old ones).
MAX_CHILDREN = 50

Fetch = Callable[[str], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class SitemapDoc:
    """One parsed sitemap document: child sitemaps (an index) and/or URLs."""

    children: tuple[tuple[str, datetime | None], ...]
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()


def _local(tag: object) -> str:
    # Split by hand: etree.QName raises on the odd tag names a recovering parse of a
    # broken document produces ("l2026-11-02T07:00:00").
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child_text(element: etree._Element, *path: str) -> str | None:
    """Text of the first descendant reached by local names ``path`` (namespaces ignored)."""
    current = [element]
    for name in path:
        current = [c for parent in current for c in parent if _local(c.tag) == name]
        if not current:
            return None
    return (current[0].text or "").strip()


def parse_sitemap(body: bytes, url: str, max_bytes: int) -> SitemapDoc:
    """Parse one sitemap document (gunzipping it first when it is gzip data)."""
    if body[:2] == b"\x1f\x8b":
        body = gunzip_capped(body, max_bytes, url)
    binary = looks_binary(body)
    if binary:
        raise SourceError(url, f"is {binary}, not a sitemap")
    if looks_html(body):
        raise SourceError(url, "is an HTML page, not a sitemap; point the source at sitemap.xml")
    parser = etree.XMLParser(
        recover=True, resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise SourceError(url, f"is not readable XML ({exc})") from None
    if root is None:
        raise SourceError(url, "is not readable XML")
    warnings = []
    if parser.error_log:
        first = parser.error_log[0]
        warnings.append(
            f"{url}: the sitemap is malformed (line {first.line}: {first.message}); "
            "read as far as it parses"
        )
    kind = _local(root.tag)
    if kind not in ("sitemapindex", "urlset"):
        raise SourceError(url, f"is XML but not a sitemap (its root element is <{kind}>)")
    children: list[tuple[str, datetime | None]] = []
    entries: list[Entry] = []
    for node in root:
        name = _local(node.tag)
        loc = _child_text(node, "loc")
        if not loc:
            continue
        link = join_url(url, loc)
        if link is None:
            warnings.append(f"{url}: skipped <loc> '{loc[:80]}', which is not a URL")
            continue
        if name == "sitemap":
            children.append((link, parse_date(_child_text(node, "lastmod"))))
        elif name == "url":
            published = parse_date(_child_text(node, "news", "publication_date"))
            hints = EntryHints(
                title=_child_text(node, "news", "title") or "",
                image=_child_text(node, "image", "loc") or None,
                published=published or parse_date(_child_text(node, "lastmod")),
            )
            entries.append(Entry(url=link, hints=hints))
    return SitemapDoc(tuple(children), tuple(entries), tuple(warnings))


def _newer(when: datetime | None, since: datetime | None) -> bool:
    return since is None or when is None or when > since


async def read_sitemap(
    url: str, fetch: Fetch, *, since: datetime | None, max_bytes: int
) -> Listing:
    """The article URLs of the sitemap (or index) at ``url`` dated after ``since``,
    newest first, undated ones last. ``SourceError`` when the top document fails."""
    warnings: list[str] = []
    entries: dict[str, Entry] = {}

    async def walk(where: str, depth: int, seen: frozenset[str]) -> None:
        response = await fetch(where)
        doc = parse_sitemap(response.body, response.url, max_bytes)
        warnings.extend(doc.warnings)
        for entry in doc.entries:
            if _newer(entry.hints.published, since):
                entries.setdefault(entry.url, entry)
        children = [c for c, lastmod in doc.children if _newer(lastmod, since) and c not in seen]
        if not children:
            return
        if depth >= MAX_DEPTH:
            warnings.append(f"{where}: sitemap indexes nest deeper than {MAX_DEPTH}; not followed")
            return
        if len(children) > MAX_CHILDREN:
            warnings.append(
                f"{where}: {len(children)} child sitemaps; only the first {MAX_CHILDREN} were read"
            )
            children = children[:MAX_CHILDREN]
        results = await asyncio.gather(
            *(walk(child, depth + 1, seen | {child}) for child in children),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, SourceError):
                warnings.append(str(result))
            elif isinstance(result, BaseException):
                raise result

    await walk(url, 0, frozenset({url}))
    oldest = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(
        entries.values(),
        key=lambda e: (e.hints.published is not None, e.hints.published or oldest),
        reverse=True,
    )
    return Listing(tuple(ordered), tuple(warnings))
