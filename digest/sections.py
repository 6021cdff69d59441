"""Per-reader sections: a reader who chose sections on the preferences page gets an
issue that carries only those.

An issue is still rendered once per *distinct choice*, not per reader: the readers
who chose nothing (most of them) get the issue as rendered, and each other choice
is rendered the first time a reader with it comes up, from the issue's stored items.
Sections a reader could not choose (not in the newsletter's ``sections``, such as
"More stories") are always kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import select

from .compose import UNSECTIONED
from .config import Config
from .errors import NothingWanted
from .models import Issue, Item, Message, Rendered, Section, Subscriber
from .personalize import MessageFactory
from .render import Renderer
from .store import Store
from .store.tables import ArticleRow, IssueItemRow, IssueRow
from .subscribers import section_preferences


def stored_issue(store: Store, config: Config, row: IssueRow) -> Issue:
    """The ``Issue`` a stored issue was rendered from, rebuilt from its items."""
    with store.session() as session:
        rows = session.execute(
            select(IssueItemRow, ArticleRow)
            .join(ArticleRow, ArticleRow.id == IssueItemRow.article_id)
            .where(IssueItemRow.issue_id == row.id)
            .order_by(IssueItemRow.position)
        ).all()
    grouped: dict[str, list[Item]] = {}
    for item, article in rows:
        name = item.section.strip() or UNSECTIONED
        grouped.setdefault(name, []).append(
            Item(
                title=item.title,
                summary=item.summary,
                url=article.url,
                image=article.image,
                image_alt=article.image_alt,
                section=item.section,
                published=article.published,
            )
        )
    return Issue(
        newsletter=row.newsletter,
        title=config.newsletter(row.newsletter).title,
        number=row.number,
        date=date.fromisoformat(row.issue_date),
        sections=tuple(Section(name, tuple(items)) for name, items in grouped.items()),
    )


class SectionedFactory:
    """A ``MessageFactory`` stand-in: ``build(subscriber)`` uses the issue as rendered
    for readers without a choice, and a factory per distinct choice for the others.

    ``NothingWanted`` from ``build`` when a reader wants none of the issue's sections.
    """

    def __init__(
        self,
        default: MessageFactory,
        issue: Issue,
        offered: list[str],
        wanted: dict[int, frozenset[str]],
        make: Callable[[Issue], MessageFactory],
    ) -> None:
        self.default = default
        self.issue = issue
        self.offered = {s.casefold() for s in offered}
        self.wanted = {sid: frozenset(s.casefold() for s in w) for sid, w in wanted.items()}
        self.make = make
        self._factories: dict[tuple[str, ...], MessageFactory] = {}

    def build(self, subscriber: Subscriber) -> Message:
        """The message for ``subscriber`` with the sections they want."""
        wanted = self.wanted.get(subscriber.id)
        if wanted is None:
            return self.default.build(subscriber)
        keep = tuple(
            section.name
            for section in self.issue.sections
            if section.name.casefold() in wanted or section.name.casefold() not in self.offered
        )
        if len(keep) == len(self.issue.sections):
            return self.default.build(subscriber)
        if not keep:
            raise NothingWanted(
                f"{subscriber.email} wants none of the sections in this issue; nothing sent."
            )
        factory = self._factories.get(keep)
        if factory is None:
            sections = tuple(s for s in self.issue.sections if s.name in keep)
            factory = self._factories[keep] = self.make(
                Issue(
                    newsletter=self.issue.newsletter,
                    title=self.issue.title,
                    number=self.issue.number,
                    date=self.issue.date,
                    sections=sections,
                )
            )
        return factory.build(subscriber)


def per_reader_sections(
    config: Config,
    store: Store,
    row: IssueRow,
    factory: MessageFactory,
    make_factory: Callable[[Rendered], MessageFactory],
) -> MessageFactory | SectionedFactory:
    """``factory`` itself when no reader of the issue's list chose sections, else a
    ``SectionedFactory`` around it. ``make_factory(rendered)`` builds the factory of a
    re-rendered variant with the same headers as ``factory``."""
    newsletter = config.newsletter(row.newsletter)
    with store.session() as session:
        wanted = section_preferences(session, newsletter.list)
    if not wanted or not newsletter.sections:
        return factory
    renderer = Renderer(config, newsletter)
    return SectionedFactory(
        factory,
        stored_issue(store, config, row),
        newsletter.sections,
        wanted,
        lambda issue: make_factory(renderer.render(issue)),
    )
