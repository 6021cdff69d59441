"""Feeds: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed 1.1 read here.

Every entry becomes a link plus ``EntryHints`` (title, summary, image, date, section,
GUID) that extraction uses where the page lacks them. A malformed feed is used as
far as it parses, with a warning; a document that is not a feed at all (an HTML page,
an image) is a ``SourceError`` that says what it is instead.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from ..dates import parse_date
from ..errors import SourceError
from ..models import EntryHints
from ..urls import join_url


@dataclass(frozen=True, slots=True)
class Entry:
    """A link to an article as a source listed it, with what the source said about it."""

    url: str
    hints: EntryHints


@dataclass(frozen=True, slots=True)
class Listing:
    """The entries a source document lists, and what was wrong with it but survivable."""

    entries: tuple[Entry, ...]
    warnings: tuple[str, ...] = ()

    def to_json(self, parsed_with: str = "") -> dict[str, Any]:
        """A JSON-ready form, kept in the HTTP cache; ``parsed_with`` names the settings
        (a listing page's selector) that produced it."""
        return {
            "version": 1,
            "parsed_with": parsed_with,
            "warnings": list(self.warnings),
            "entries": [
                {
                    "url": e.url,
                    "title": e.hints.title,
                    "summary": e.hints.summary,
                    "image": e.hints.image,
                    "published": e.hints.published.isoformat() if e.hints.published else None,
                    "section": e.hints.section,
                    "guid": e.hints.guid,
                }
                for e in self.entries
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], parsed_with: str = "") -> Listing | None:
        """The listing ``to_json`` kept, or ``None`` when it was made differently."""
        if data.get("version") != 1 or data.get("parsed_with") != parsed_with:
            return None
        entries = tuple(
            Entry(
                url=e["url"],
                hints=EntryHints(
                    title=e["title"],
                    summary=e["summary"],
                    image=e["image"],
                    published=datetime.fromisoformat(e["published"]) if e["published"] else None,
                    section=e["section"],
                    guid=e["guid"],
                ),
            )
            for e in data["entries"]
        )
        return cls(entries, tuple(data["warnings"]))


_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html)[\s>]", re.I | re.S)
_FEED_LINK = re.compile(
    rb"<link\b[^>]*type=[\"']application/(?:rss|atom)\+xml[\"'][^>]*>", re.I | re.S
)
_HREF = re.compile(rb"href=[\"']([^\"']+)[\"']", re.I)
_BINARY_TYPES = ("image/", "audio/", "video/", "application/pdf", "application/zip", "font/")


def looks_binary(body: bytes, content_type: str = "") -> str | None:
    """A description of ``body`` when it is binary rather than text, else ``None``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith(_BINARY_TYPES) or media == "application/octet-stream":
        return f"binary content ({media})"
    head = body[:2048]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary content (it contains NUL bytes)"
    return None


def looks_html(body: bytes) -> bool:
    """True when ``body`` starts like an HTML document (after a BOM and comments)."""
    return bool(_HTML_START.match(body.removeprefix(b"\xef\xbb\xbf")[:4096]))


def _not_a_feed(body: bytes, url: str) -> SourceError:
    match = _FEED_LINK.search(body[:200_000])
    href = _HREF.search(match.group(0)) if match else None
    found = None
    if href:
        found = join_url(url, href.group(1).decode("utf-8", "replace"))
    if found:
        return SourceError(url, f"is an HTML page, not a feed; the page names its feed at {found}")
    return SourceError(url, "is an HTML page, not a feed; point the source at the site's feed")


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


def _is_json_feed(body: bytes, content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/feed+json", "application/json"):
        return True
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" and b"jsonfeed.org/version" in body[:4096]


def parse_json_feed(body: bytes, url: str) -> Listing:
    """The items of a JSON Feed (1.0 or 1.1); ``SourceError`` when it is not one."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(url, f"is not a readable JSON Feed ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise SourceError(url, "is JSON but not a JSON Feed (no 'items' list)")
    warnings = []
    if "jsonfeed.org/version/" not in str(doc.get("version", "")):
        warnings.append(f"{url}: JSON Feed without a jsonfeed.org 'version'; read anyway")
    entries = []
    skipped = 0
    for item in doc["items"]:
        if not isinstance(item, dict):
            skipped += 1
            continue
        link = item.get("url") or item.get("external_url") or ""
        absolute = join_url(url, link) if isinstance(link, str) and link else None
        if absolute is None:
            skipped += 1
            continue
        tags = item.get("tags") if isinstance(item.get("tags"), list) else []
        hints = EntryHints(
            title=str(item.get("title") or ""),
            summary=str(item.get("summary") or ""),
            image=str(item.get("image") or item.get("banner_image") or "") or None,
            published=parse_date(item.get("date_published"))
            or parse_date(item.get("date_modified")),
            section=str(tags[0]) if tags else "",
            guid=str(item.get("id") or ""),
        )
        entries.append(Entry(url=absolute, hints=hints))
    if skipped:
        were = "item without a link was" if skipped == 1 else "items without a link were"
        warnings.append(f"{url}: {skipped} JSON Feed {were} skipped")
    return Listing(tuple(entries), tuple(warnings))


def parse_feed(body: bytes, url: str, content_type: str = "") -> Listing:
    """The entries of a feed document, links made absolute against ``url``.

    Entries without a link are skipped. A document that yields no entries and that
    feedparser flags as malformed raises ``SourceError``; a malformed feed that still
    yields entries is used as far as it goes, with a warning.
    """
    binary = looks_binary(body, content_type)
    if binary:
        raise SourceError(url, f"is {binary}, not a feed")
    if _is_json_feed(body, content_type):
        return parse_json_feed(body, url)
    # feedparser resolves relative links against Content-Location itself, but mangles
    # file: URLs; those are resolved below instead.
    headers = {"content-location": url} if url.startswith(("http://", "https://")) else {}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(body, response_headers=headers)
    if not parsed.entries:
        if looks_html(body):
            raise _not_a_feed(body, url)
        if parsed.get("bozo"):
            reason = parsed.get("bozo_exception")
            raise SourceError(url, f"is not a readable feed ({reason})")
        return Listing(())
    warnings = []
    encoding = str(parsed.get("encoding") or "")
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        if isinstance(exc, feedparser.CharacterEncodingOverride):
            warnings.append(f"{url}: {exc}; the feed was read as {encoding}")
        elif isinstance(exc, feedparser.NonXMLContentType):
            # Feeds served as text/plain or with no type are common and harmless; only a
            # guessed charset is worth a word.
            if encoding.lower() not in ("utf-8", "us-ascii", "ascii"):
                warnings.append(f"{url}: the feed declares no charset; it was read as {encoding}")
        else:
            warnings.append(f"{url}: the feed is malformed ({exc}); read as far as it parses")
    entries = []
    skipped = 0
    for entry in parsed.entries:
        link = entry.get("link") or ""
        if not link and str(entry.get("id", "")).startswith(("http://", "https://")):
            link = entry["id"]
        absolute = join_url(url, link) if link else None
        if absolute is None:
            skipped += 1
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
        entries.append(Entry(url=absolute, hints=hints))
    if skipped:
        were = "entry without a link was" if skipped == 1 else "entries without a link were"
        warnings.append(f"{url}: {skipped} feed {were} skipped")
    return Listing(tuple(entries), tuple(warnings))
