"""The ``http_cache`` table: validators and body of each source document's last fetch
(``digest.collect.cache`` says what they are for)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from . import Store
from .dialect import insert
from .tables import HttpCacheRow, utcnow


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
        """Record a fresh response for ``url``, replacing the previous one (and its listing)
        in one statement, so two processes fetching the same URL never collide."""
        values: dict[str, Any] = {
            "final_url": final_url,
            "status": status,
            "etag": etag,
            "last_modified": last_modified,
            "content_type": content_type,
            "body": body,
            "listing": None,
            "fetched_at": utcnow(),
        }
        with self.store.session() as session:
            statement = insert(session, HttpCacheRow).values(url=url, **values)
            session.execute(statement.on_conflict_do_update(index_elements=["url"], set_=values))

    def save_listing(self, url: str, listing: dict[str, Any]) -> None:
        """Keep what collection parsed from the body of ``url`` (a JSON-ready dict)."""
        with self.store.session() as session:
            session.execute(
                update(HttpCacheRow).where(HttpCacheRow.url == url).values(listing=listing)
            )

    def touch(self, url: str) -> None:
        """Note that ``url`` was confirmed unchanged (a 304) just now; used for entries
        with a freshness lifetime (robots.txt), whose clock restarts."""
        with self.store.session() as session:
            session.execute(
                update(HttpCacheRow).where(HttpCacheRow.url == url).values(fetched_at=utcnow())
            )
