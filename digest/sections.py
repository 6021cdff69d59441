"""Per-reader sections: a reader who chose sections on the preferences page gets an
issue that carries only those.

An issue is still rendered once per *distinct choice*, not per reader: the readers
who chose nothing (most of them) get the issue as rendered, and each other choice
is rendered the first time a reader with it comes up, from the issue's stored items.
Sections a reader could not choose (not in the newsletter's ``sections``, such as
"More stories") are always kept. The top story stays on top for readers who want its
section; for the others the newest item of their first section takes its place, as
composing an issue from their sections alone would have chosen.
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


def _section_of(item: Item) -> str:
    return item.section.strip() or UNSECTIONED


def stored_issue(store: Store, config: Config, row: IssueRow) -> Issue:
    """The ``Issue`` a stored issue was rendered from, rebuilt from its items.

    Items are stored in email order, so with ``top_story`` (compose then always picks
    one) the first item is the top story.
    """
    with store.session() as session:
        rows = session.execute(
            select(IssueItemRow, ArticleRow)
            .join(ArticleRow, ArticleRow.id == IssueItemRow.article_id)
            .where(IssueItemRow.issue_id == row.id)
            .order_by(IssueItemRow.position)
        ).all()
    items = [
        Item(
            title=item.title,
            summary=item.summary,
            url=article.url,
            image=article.image,
            image_alt=article.image_alt,
            section=item.section,
            published=article.published,
        )
        for item, article in rows
    ]
    newsletter = config.newsletter(row.newsletter)
    top = items.pop(0) if newsletter.top_story and items else None
    grouped: dict[str, list[Item]] = {}
    for item in items:
        grouped.setdefault(_section_of(item), []).append(item)
    return Issue(
        newsletter=row.newsletter,
        title=newsletter.title,
        number=row.number,
        date=date.fromisoformat(row.issue_date),
        sections=tuple(Section(name, tuple(items)) for name, items in grouped.items()),
        top=top,
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
        self._factories: dict[tuple[bool, tuple[str, ...]], MessageFactory] = {}

    def build(self, subscriber: Subscriber) -> Message:
        """The message for ``subscriber`` with the sections they want."""
        wanted = self.wanted.get(subscriber.id)
        if wanted is None:
            return self.default.build(subscriber)

        def kept(name: str) -> bool:
            return name.casefold() in wanted or name.casefold() not in self.offered

        top = self.issue.top
        keep_top = top is not None and kept(_section_of(top))
        keep = tuple(section.name for section in self.issue.sections if kept(section.name))
        if len(keep) == len(self.issue.sections) and (top is None or keep_top):
            return self.default.build(subscriber)
        if not keep and not keep_top:
            raise NothingWanted(
                f"{subscriber.email} wants none of the sections in this issue; nothing sent."
            )
        factory = self._factories.get((keep_top, keep))
        if factory is None:
            factory = self._factories[(keep_top, keep)] = self.make(self._variant(keep_top, keep))
        return factory.build(subscriber)

    def _variant(self, keep_top: bool, keep: tuple[str, ...]) -> Issue:
        """The issue with only the sections ``keep``; its top story, or a new one."""
        sections = [s for s in self.issue.sections if s.name in keep]
        top = self.issue.top if keep_top else None
        if self.issue.top is not None and not keep_top and sections:
            first = sections.pop(0)
            top = first.items[0]
            if len(first.items) > 1:
                sections.insert(0, Section(first.name, first.items[1:]))
        return Issue(
            newsletter=self.issue.newsletter,
            title=self.issue.title,
            number=self.issue.number,
            date=self.issue.date,
            sections=tuple(sections),
            top=top,
        )


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
