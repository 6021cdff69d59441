"""Composition: which items go into an issue, grouped by section, in what order.

The caller passes the articles this newsletter has not sent yet ("since the last
issue") and decides whether the result is worth sending (``min_items``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    feed_summaries: Mapping[str, str] | None = None,
) -> Issue:
    """The issue of ``articles``.

    * Sections follow ``newsletter.sections`` (case-insensitive); sections not listed
      follow in order of their newest item, and unsectioned items come last under
      "More stories". Within a section, newest first (undated items last).
    * ``section_max_items`` caps each section and ``max_items`` the whole issue; what
      a cap leaves out is the oldest (it stays unsent and can lead the next issue).
    * With ``top_story``, the first item in that order (the newest of the
      highest-ranked section) becomes ``Issue.top`` and leaves its section.

    ``feed_summaries`` (article URL -> feed summary) is the summary fallback.
    """
    summaries = feed_summaries or {}
    items = sorted(
        (
            summarize(
                article,
                newsletter.summary_words,
                fallback=summaries.get(article.url, ""),
                language=newsletter.language,
            )
            for article in articles
        ),
        key=_newest_first,
        reverse=True,
    )
    configured = {s.casefold(): i for i, s in enumerate(newsletter.sections)}
    # Sections match case-insensitively and show under their configured spelling.
    names = {s.casefold(): s for s in reversed(newsletter.sections)}
    grouped: dict[str, list[Item]] = {}
    for item in items:
        label = item.section.strip() or UNSECTIONED
        section = grouped.setdefault(names.setdefault(label.casefold(), label), [])
        if newsletter.section_max_items is None or len(section) < newsletter.section_max_items:
            section.append(item)
    capped = sorted(
        (i for group in grouped.values() for i in group), key=_newest_first, reverse=True
    )
    kept = {id(item) for item in capped[: newsletter.max_items]}
    grouped = {s: [i for i in group if id(i) in kept] for s, group in grouped.items()}
    grouped = {s: group for s, group in grouped.items() if group}
    order = sorted(
        grouped,
        key=lambda s: (
            configured.get(s.casefold(), len(configured)),
            s == UNSECTIONED,
            -_newest_first(grouped[s][0]).timestamp(),
        ),
    )
    top = None
    if newsletter.top_story and order:
        top = grouped[order[0]].pop(0)
    sections = tuple(Section(name=s, items=tuple(grouped[s])) for s in order if grouped[s])
    return Issue(
        newsletter=name,
        title=newsletter.title,
        number=number,
        date=issue_date,
        sections=sections,
        top=top,
    )
