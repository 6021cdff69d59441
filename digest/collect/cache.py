"""The HTTP cache of source documents, for conditional GET.

Feeds, sitemaps, listing pages and robots.txt are fetched every run; their ``ETag``
and ``Last-Modified`` are kept per URL (table ``http_cache``) and sent back as
``If-None-Match`` / ``If-Modified-Since``. The body is kept too, so a ``304 Not
Modified`` is answered from the store and costs nothing more on the wire; so is the
listing collection parsed from it, so an unchanged feed is not even parsed again. Article
pages are not cached here: one already extracted is never fetched again.
"""

from __future__ import annotations

from ..store.http_cache import Cached, HttpCache

__all__ = ["Cached", "HttpCache"]
