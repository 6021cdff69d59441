"""Extraction: headline, standfirst and lead paragraph of an article page.

A first reader built on selectolax: the article's own headline, the dek or the
page's description as standfirst, and the first substantial paragraph as lead.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from selectolax.lexbor import LexborHTMLParser as HTMLParser

from .errors import ExtractError
from .models import Article, EntryHints, Page
from .urls import canonical_url, same_site


def decode_html(body: bytes, content_type: str = "") -> str:
    """The page as text: BOM, then the page's meta charset, then the header, then UTF-8."""
    if b"\x00" in body[:1024]:
        raise ExtractError("the page is binary content, not HTML")
    if body.startswith(b"\xef\xbb\xbf"):
        return body[3:].decode("utf-8", "replace")
    match = re.search(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_-]+)", body[:4096], re.I)
    header = re.search(r"charset=([A-Za-z0-9_-]+)", content_type)
    for charset in (match and match.group(1).decode(), header and header.group(1), "utf-8"):
        if not charset:
            continue
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("windows-1252", "replace")


def _text(node) -> str:  # type: ignore[no-untyped-def]
    return " ".join(node.text(separator="").replace("\xa0", " ").split()) if node else ""


def _meta(tree: HTMLParser, *names: str) -> str:
    for name in names:
        node = tree.css_first(f'meta[property="{name}"], meta[name="{name}"]')
        if node and node.attributes.get("content"):
            return " ".join((node.attributes["content"] or "").split())
    return ""


def extract_html(
    html: str | bytes, url: str, *, hints: EntryHints | None = None, content_type: str = ""
) -> Article:
    """Read an article from ``html`` fetched at ``url``; ``ExtractError`` if it has none."""
    hints = hints or EntryHints()
    text = decode_html(html, content_type) if isinstance(html, bytes) else html
    tree = HTMLParser(text)
    for node in tree.css(
        "script:not([type='application/ld+json']), style, noscript, nav, footer, aside, figure"
    ):
        node.decompose()
    ld: dict = {}
    for node in tree.css("script[type='application/ld+json']"):
        try:
            data = json.loads(node.text())
        except ValueError:
            continue
        if isinstance(data, dict) and "headline" in data:
            ld = data
    headline = (
        _text(tree.css_first("h1"))
        or str(ld.get("headline", ""))
        or _meta(tree, "og:title")
        or hints.title
    )
    standfirst = (
        str(ld.get("description", ""))
        or _meta(tree, "og:description", "description")
        or hints.summary
    )
    paragraphs = [_text(p) for p in tree.css("p")]
    paragraphs = [p for p in paragraphs if len(p.split()) >= 12]
    lead = paragraphs[0] if paragraphs else ""
    if not headline and not lead:
        raise ExtractError(f"{url} has no headline and no article text.")
    canonical = tree.css_first("link[rel=canonical]")
    href = canonical.attributes.get("href") if canonical else None
    final = href if href and (same_site(href, url) or url.startswith("file:")) else url
    published = None
    raw = str(ld.get("datePublished", "")) or _meta(tree, "article:published_time")
    if raw:
        try:
            published = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if published.tzinfo is None:
                published = published.replace(tzinfo=UTC)
        except ValueError:
            published = None
    return Article(
        url=canonical_url(final),
        headline=headline,
        standfirst=standfirst,
        lead=lead,
        paragraphs=tuple(paragraphs),
        image=_meta(tree, "og:image") or hints.image,
        section=_meta(tree, "article:section") or hints.section,
        published=published or hints.published,
        language=(tree.css_first("html").attributes.get("lang") or "")
        if tree.css_first("html")
        else "",
    )


def extract(page: Page) -> Article:
    """Read the article of a fetched page."""
    return extract_html(page.body, page.final_url, hints=page.hints, content_type=page.content_type)
