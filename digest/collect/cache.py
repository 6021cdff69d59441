"""The HTTP cache of source documents, for conditional GET.

Feeds, sitemaps, listing pages and robots.txt are fetched every run; their ``ETag``
and ``Last-Modified`` are kept per URL (table ``http_cache``) and sent back as
``If-None-Match`` / ``If-Modified-Since``. The body is kept too, so a ``304 Not
Modified`` is answered from the store and costs nothing more on the wire; so is the
listing collection parsed from it, so an unchanged feed is not even parsed again. Article
pages are not cached here: one already extracted is never fetched again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ..store import Store
from ..store.tables import HttpCacheRow, utcnow


@dataclass(frozen=True, slots=True)
class Cached:
    """What the last fetch of ``url`` returned."""

    url: str
    final_url: str
    status: int
    etag: str
    last_modified: str
    content_type: str
    body: bytes
    fetched_at: datetime
    listing: dict[str, Any] | None = None

    def validators(self) -> dict[str, str]:
        """The conditional request headers this entry allows (may be empty)."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class HttpCache:
    """Cache entries in the store, one row per URL (as first requested, before redirects)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, url: str) -> Cached | None:
        """The entry for ``url``, or ``None``."""
        with self.store.session() as session:
            row = session.scalar(select(HttpCacheRow).where(HttpCacheRow.url == url))
            if row is None:
                return None
            return Cached(
                url=row.url,
                final_url=row.final_url or row.url,
                status=row.status,
                etag=row.etag,
                last_modified=row.last_modified,
                content_type=row.content_type,
                body=row.body,
                fetched_at=row.fetched_at,
                listing=row.listing,
            )

    def put(
        self,
        url: str,
        *,
        final_url: str,
        status: int,
        etag: str,
        last_modified: str,
        content_type: str,
        body: bytes,
    ) -> None:
        """Record a fresh response for ``url``, replacing the previous one."""
        with self.store.session() as session:
            row = session.scalar(select(HttpCacheRow).where(HttpCacheRow.url == url))
            if row is None:
                row = HttpCacheRow(url=url)
                session.add(row)
            row.final_url = final_url
            row.status = status
            row.etag = etag
            row.last_modified = last_modified
            row.content_type = content_type
            row.body = body
            row.listing = None
            row.fetched_at = utcnow()

    def save_listing(self, url: str, listing: dict[str, Any]) -> None:
        """Keep what collection parsed from the body of ``url`` (a JSON-ready dict)."""
        with self.store.session() as session:
            row = session.scalar(select(HttpCacheRow).where(HttpCacheRow.url == url))
            if row is not None:
                row.listing = listing

    def touch(self, url: str) -> None:
        """Note that ``url`` was confirmed unchanged (a 304) just now; used for entries
        with a freshness lifetime (robots.txt), whose clock restarts."""
        with self.store.session() as session:
            row = session.scalar(select(HttpCacheRow).where(HttpCacheRow.url == url))
            if row is not None:
                row.fetched_at = utcnow()
