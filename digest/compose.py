"""Composition: which items go into an issue, grouped by section, in what order."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from .config import NewsletterConfig
from .models import Article, Issue, Item, Section
from .summarize import summarize

UNSECTIONED = "More stories"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _newest_first(item: Item) -> datetime:
    return item.published or _EPOCH


def compose(
    name: str,
    newsletter: NewsletterConfig,
    articles: Sequence[Article],
    *,
    number: int,
    issue_date: date,
) -> Issue:
    """An issue of the given articles: newest first within a section, sections in the
    configured order (unlisted sections follow in order of their newest item), at most
    ``max_items`` items, dropping the oldest first.

    The caller decides whether the issue is worth sending (``min_items``).
    """
    items = sorted(
        (summarize(article, newsletter.summary_words) for article in articles),
        key=_newest_first,
        reverse=True,
    )[: newsletter.max_items]
    grouped: dict[str, list[Item]] = {}
    for item in items:
        grouped.setdefault(item.section.strip() or UNSECTIONED, []).append(item)
    configured = {s.casefold(): i for i, s in enumerate(newsletter.sections)}
    order = sorted(
        grouped,
        key=lambda s: (
            configured.get(s.casefold(), len(configured)),
            s == UNSECTIONED,
            -_newest_first(grouped[s][0]).timestamp(),
        ),
    )
    sections = tuple(Section(name=s, items=tuple(grouped[s])) for s in order)
    return Issue(
        newsletter=name,
        title=newsletter.title,
        number=number,
        date=issue_date,
        sections=sections,
    )
