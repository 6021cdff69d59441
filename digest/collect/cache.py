"""The HTTP cache of source documents, for conditional GET.

Feeds, sitemaps, listing pages and robots.txt are fetched every run; their ``ETag``
and ``Last-Modified`` are kept per URL (table ``http_cache``) and sent back as
``If-None-Match`` / ``If-Modified-Since``. The body is kept too, so a ``304 Not
Modified`` is answered from the store and costs nothing more on the wire; so is the
listing collection parsed from it, so an unchanged feed is not even parsed again. Article
pages are not cached here: one already extracted is never fetched again.
"""

from __future__ import annotations

from typing import Any

from ..store import Store, http_cache
from ..store.http_cache import Cached


class HttpCache:
    """Cache entries in the store, one row per URL (as first requested, before redirects)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, url: str) -> Cached | None:
        """The entry for ``url``, or ``None``."""
        return http_cache.get(self.store, url)

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
        http_cache.put(
            self.store,
            url,
            final_url=final_url,
            status=status,
            etag=etag,
            last_modified=last_modified,
            content_type=content_type,
            body=body,
        )

    def save_listing(self, url: str, listing: dict[str, Any]) -> None:
        """Keep what collection parsed from the body of ``url`` (a JSON-ready dict)."""
        http_cache.save_listing(self.store, url, listing)

    def touch(self, url: str) -> None:
        """Note that ``url`` was confirmed unchanged (a 304) just now; used for entries
        with a freshness lifetime (robots.txt), whose clock restarts."""
        http_cache.touch(self.store, url)
