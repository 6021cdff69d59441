"""Feeds (RSS, Atom, RDF) through feedparser: entries become links plus hints."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from ..errors import SourceError
from ..models import EntryHints


@dataclass(frozen=True, slots=True)
class Entry:
    """A link to an article as a source listed it, with what the source said about it."""

    url: str
    hints: EntryHints


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _image(entry: Any) -> str | None:
    for media in entry.get("media_content") or []:
        if media.get("url") and media.get("medium", "image") == "image":
            return str(media["url"])
    for thumb in entry.get("media_thumbnail") or []:
        if thumb.get("url"):
            return str(thumb["url"])
    for enclosure in entry.get("enclosures") or []:
        if str(enclosure.get("type", "")).startswith("image/") and enclosure.get("href"):
            return str(enclosure["href"])
    return None


def parse_feed(body: bytes, url: str) -> list[Entry]:
    """The entries of a feed document, links made absolute against ``url``.

    Entries without a link are skipped. A document with no entries that feedparser
    flags as malformed raises ``SourceError``; a malformed feed that still yields
    entries is used as far as it goes.
    """
    # feedparser resolves relative links against Content-Location itself, but mangles
    # file: URLs; those are resolved below instead.
    headers = {"content-location": url} if url.startswith(("http://", "https://")) else {}
    parsed = feedparser.parse(body, response_headers=headers)
    if not parsed.entries:
        if parsed.get("bozo"):
            reason = parsed.get("bozo_exception")
            raise SourceError(url, f"is not a readable feed ({reason})")
        return []
    entries = []
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link and str(entry.get("id", "")).startswith(("http://", "https://")):
            link = entry["id"]
        if not link:
            continue
        tags = entry.get("tags") or []
        hints = EntryHints(
            title=entry.get("title", "") or "",
            summary=entry.get("summary", "") or "",
            image=_image(entry),
            published=_published(entry),
            section=(tags[0].get("term") or "") if tags else "",
            guid=entry.get("id", "") or "",
        )
        entries.append(Entry(url=urljoin(url, link), hints=hints))
    return entries
