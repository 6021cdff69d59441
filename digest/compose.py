"""Composition: which items go into an issue, grouped by section, in what order.

The caller passes the articles this newsletter has not sent yet ("since the last
issue") and decides whether the result is worth sending (``min_items``). ``restrict``
cuts a composed issue down to the sections one reader chose, by the same rules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
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
        label = section_of(item)
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
    sections = tuple(Section(name=s, items=tuple(grouped[s])) for s in order)
    top = None
    if newsletter.top_story:
        top, sections = _lift_top(sections)
    return Issue(
        newsletter=name,
        title=newsletter.title,
        number=number,
        date=issue_date,
        sections=sections,
        top=top,
    )


def section_of(item: Item) -> str:
    """The section ``item`` is listed under (``UNSECTIONED`` without one)."""
    return item.section.strip() or UNSECTIONED


def _lift_top(sections: tuple[Section, ...]) -> tuple[Item | None, tuple[Section, ...]]:
    """The top story of ``sections`` (in issue order) and the sections without it: the
    first item of the first section, the newest of the highest-ranked; a section it
    leaves empty goes."""
    if not sections:
        return None, sections
    first, *rest = sections
    if len(first.items) > 1:
        return first.items[0], (Section(first.name, first.items[1:]), *rest)
    return first.items[0], tuple(rest)


def restrict(issue: Issue, wanted: Collection[str], offered: Collection[str]) -> Issue:
    """``issue`` with only the sections a reader wants (``issue`` itself when that is all
    of them; an issue without items when they want none of its sections).

    ``offered`` are the sections a reader could choose; others (such as "More stories")
    are always kept. Names match case-insensitively. The top story stays when its
    section is wanted; otherwise, if the issue has one, ``compose``'s rule picks the
    reader's own among the sections kept.
    """
    chosen = {name.casefold() for name in wanted}
    choosable = {name.casefold() for name in offered}

    def kept(name: str) -> bool:
        return name.casefold() in chosen or name.casefold() not in choosable

    sections = tuple(section for section in issue.sections if kept(section.name))
    keep_top = issue.top is not None and kept(section_of(issue.top))
    if len(sections) == len(issue.sections) and (issue.top is None or keep_top):
        return issue
    top = issue.top if keep_top else None
    if issue.top is not None and not keep_top:
        top, sections = _lift_top(sections)
    return replace(issue, sections=sections, top=top)
