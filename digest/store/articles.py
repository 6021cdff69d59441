"""The ``articles`` table: every article extracted, keyed by canonical URL, reused by
every newsletter. An article is *sent* for a newsletter once an issue of it carries
the article (``issue_items``, written by ``digest.store.issues``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from ..models import Article
from . import Store, dialect
from .dialect import insert
from .tables import ArticleRow, IssueItemRow, IssueRow, utcnow


@dataclass(frozen=True, slots=True)
class Found:
    """An article to keep, with how its source named it: the feed entry's GUID and the
    canonical URL the source listed (before redirects)."""

    article: Article
    guid: str
    source_url: str


def known(store: Store, keys: Collection[str]) -> set[str]:
    """Those of ``keys`` (canonical URLs, source URLs, GUIDs) an article is stored for."""
    wanted = list(keys)
    found: set[str] = set()
    with store.session() as session:
        for chunk in dialect.chunks(wanted):
            rows = session.execute(
                select(ArticleRow.url, ArticleRow.source_url, ArticleRow.guid).where(
                    or_(
                        ArticleRow.url.in_(chunk),
                        ArticleRow.source_url.in_(chunk),
                        ArticleRow.guid.in_(chunk),
                    )
                )
            )
            for row in rows:
                found.update(value for value in row if value)
    return found & set(wanted)


def add(store: Store, found: Iterable[Found]) -> None:
    """Store the articles of ``found`` whose URL is not stored yet (the same article
    reached through another link, or by another process at the same time, is kept
    once), in one transaction."""
    now = utcnow()
    rows = [
        {
            "url": entry.article.url,
            "guid": entry.guid,
            "source_url": entry.source_url,
            "headline": entry.article.headline,
            "standfirst": entry.article.standfirst,
            "lead": entry.article.lead,
            "image": entry.article.image,
            "image_alt": entry.article.image_alt,
            "image_width": entry.article.image_width,
            "image_height": entry.article.image_height,
            "section": entry.article.section,
            "byline": entry.article.byline,
            "language": entry.article.language,
            "published": entry.article.published,
            "collected_at": now,
        }
        for entry in found
    ]
    if not rows:
        return
    with store.session() as session:
        statement = insert(session, ArticleRow).on_conflict_do_nothing(index_elements=["url"])
        session.execute(statement, rows)  # executemany: batched within bind-parameter caps


def unsent(store: Store, newsletter: str, listed: Collection[str]) -> list[tuple[int, Article]]:
    """The stored articles that ``listed`` (source URLs, GUIDs or canonical URLs) names
    and no issue of ``newsletter`` carried, as (id, article), oldest first. Asked
    ``dialect.CHUNK`` names at a time: a feed or sitemap may list a hundred thousand."""
    sent_here = (
        select(IssueItemRow.article_id)
        .join(IssueRow, IssueRow.id == IssueItemRow.issue_id)
        .where(IssueRow.newsletter == newsletter)
    )
    found: dict[int, Article] = {}
    with store.session() as session:
        for chunk in dialect.chunks(listed):
            rows = session.scalars(
                select(ArticleRow).where(
                    or_(
                        ArticleRow.source_url.in_(chunk),
                        ArticleRow.guid.in_(chunk),
                        ArticleRow.url.in_(chunk),
                    ),
                    ArticleRow.id.not_in(sent_here),
                )
            )
            found.update((row.id, _article(row)) for row in rows if row.id not in found)
    return sorted(found.items())


def collected_since(store: Store, ids: Collection[int], since: datetime) -> int:
    """How many of the articles ``ids`` were collected after ``since``."""
    with store.session() as session:
        return sum(
            session.scalar(
                select(func.count(ArticleRow.id)).where(
                    ArticleRow.id.in_(chunk), ArticleRow.collected_at > since
                )
            )
            or 0
            for chunk in dialect.chunks(ids)
        )


def _article(row: ArticleRow) -> Article:
    return Article(
        url=row.url,
        headline=row.headline,
        standfirst=row.standfirst,
        lead=row.lead,
        image=row.image,
        image_alt=row.image_alt,
        image_width=row.image_width,
        image_height=row.image_height,
        section=row.section,
        published=row.published,
        byline=row.byline,
        language=row.language,
    )
