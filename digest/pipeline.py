"""The pipeline of one newsletter: collect, extract, compose, render, send, record.

``Pipeline`` wires the stages together around the store. ``build`` makes the next
issue without changing anything but the article cache; ``preview`` writes it to
files; ``run`` sends it (or resumes the issue a crashed run left unfinished) and
records what went out.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, or_, select

from .backends import make_backend
from .collect import SourceReport, collect
from .collect.fetch import Fetcher
from .compose import compose
from .config import Config, NewsletterConfig
from .dispatch import SendProgress, SendReport, queue_deliveries, send_issue
from .errors import ConfigError, ExtractError
from .extract import extract
from .models import Article, Issue, Rendered, Subscriber
from .personalize import MessageFactory, fill_slots, list_id
from .render import Renderer
from .store import Store
from .store.tables import (
    ArticleRow,
    DeliveryRow,
    IssueItemRow,
    IssueRow,
    ListRow,
    SubscriberRow,
    utcnow,
)
from .subscribers import count_active
from .tokens import make_token, secret_key
from .urls import canonical_url

PREVIEW_SUBSCRIBER = Subscriber(id=0, email="reader@example.org", name="Preview Reader")


@dataclass(frozen=True, slots=True)
class Built:
    """The next issue of a newsletter, rendered, with what collection met on the way."""

    issue: Issue | None
    rendered: Rendered | None
    article_ids: tuple[int, ...]
    sources: tuple[SourceReport, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunReport:
    """What ``run`` did, for the CLI and the schedule's history."""

    newsletter: str
    issue_number: int | None
    items: int
    recipients: int
    send: SendReport | None
    sources: tuple[SourceReport, ...] = ()
    problems: tuple[str, ...] = ()
    message: str = ""
    resumed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class PreviewFiles:
    html: Path
    text: Path
    eml: Path
    built: Built


def _article(row: ArticleRow) -> Article:
    return Article(
        url=row.url,
        headline=row.headline,
        standfirst=row.standfirst,
        lead=row.lead,
        image=row.image,
        image_alt=row.image_alt,
        section=row.section,
        published=row.published,
        byline=row.byline,
        language=row.language,
    )


def _rendered(row: IssueRow) -> Rendered:
    return Rendered(
        subject=row.subject,
        preheader=row.preheader,
        html=row.html,
        text=row.text,
        slots=tuple(row.slots.items()),
    )


class Pipeline:
    """The stages of every newsletter in ``config`` around one open ``store``.

    ``transport`` (an ``httpx`` transport) and ``now`` are injected by tests.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.transport = transport
        self.now = now
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self._secret = secret_key(self.config.root)
        return self._secret

    def _fetcher(self) -> Fetcher:
        client = None
        if self.transport is not None:
            client = httpx.AsyncClient(transport=self.transport, follow_redirects=True)
        return Fetcher(client, user_agent=self.config.user_agent)

    # -- collect and extract -------------------------------------------------

    def _is_known(self, key: str) -> bool:
        with self.store.session() as session:
            return (
                session.scalar(
                    select(ArticleRow.id).where(
                        or_(
                            ArticleRow.url == key,
                            ArticleRow.source_url == key,
                            ArticleRow.guid == key,
                        )
                    )
                )
                is not None
            )

    async def gather(
        self, name: str, newsletter: NewsletterConfig
    ) -> tuple[list[tuple[int, Article]], tuple[SourceReport, ...], tuple[str, ...]]:
        """Collect and extract new pages into the store; return the newsletter's unsent
        articles (id, article) that its sources list now, the source reports and the
        extraction problems."""
        fetcher = self._fetcher()
        async with fetcher:
            collected = await collect(newsletter.sources, fetcher, is_known=self._is_known)
        problems: list[str] = []
        with self.store.session() as session:
            for page in collected.pages:
                try:
                    article = extract(page)
                except ExtractError as exc:
                    problems.append(str(exc))
                    continue
                if session.scalar(select(ArticleRow.id).where(ArticleRow.url == article.url)):
                    continue  # the same article reached through another link
                session.add(
                    ArticleRow(
                        url=article.url,
                        guid=page.hints.guid,
                        source_url=canonical_url(page.url),
                        headline=article.headline,
                        standfirst=article.standfirst,
                        lead=article.lead,
                        image=article.image,
                        image_alt=article.image_alt,
                        section=article.section,
                        byline=article.byline,
                        language=article.language,
                        published=article.published,
                        collected_at=utcnow(),
                    )
                )
                session.flush()
            listed = list(collected.listed)
            sent_here = (
                select(IssueItemRow.article_id)
                .join(IssueRow, IssueRow.id == IssueItemRow.issue_id)
                .where(IssueRow.newsletter == name)
            )
            rows = session.scalars(
                select(ArticleRow).where(
                    or_(
                        ArticleRow.source_url.in_(listed),
                        ArticleRow.guid.in_(listed),
                        ArticleRow.url.in_(listed),
                    ),
                    ArticleRow.id.not_in(sent_here),
                )
            ).all()
            articles = [(row.id, _article(row)) for row in rows]
        return articles, collected.reports, tuple(problems)

    # -- build ---------------------------------------------------------------

    def _next_number(self, name: str) -> int:
        with self.store.session() as session:
            return (
                session.scalar(select(func.max(IssueRow.number)).where(IssueRow.newsletter == name))
                or 0
            ) + 1

    async def build(self, name: str) -> Built:
        """The next issue of ``name`` from what its sources list and it has not sent."""
        newsletter = self.config.newsletter(name)
        renderer = Renderer(self.config, newsletter)
        articles, sources, problems = await self.gather(name, newsletter)
        if not articles:
            return Built(None, None, (), sources, problems)
        local_date = self.now().astimezone(ZoneInfo(newsletter.timezone)).date()
        issue = compose(
            name,
            newsletter,
            [article for _, article in articles],
            number=self._next_number(name),
            issue_date=local_date,
        )
        by_url = {article.url: article_id for article_id, article in articles}
        ids = tuple(by_url[item.url] for item in issue.items)
        return Built(issue, renderer.render(issue), ids, sources, problems)

    # -- messages ------------------------------------------------------------

    def links(self, list_name: str) -> Callable[[Subscriber], dict[str, str]]:
        """The per-recipient URLs of messages to ``list_name``."""
        base = self.config.base_url
        key = self.secret

        def for_subscriber(subscriber: Subscriber) -> dict[str, str]:
            return {
                "unsubscribe_url": f"{base}/unsubscribe/{make_token(key, 'unsubscribe', subscriber.id, list_name)}",
                "preferences_url": f"{base}/preferences/{make_token(key, 'preferences', subscriber.id, list_name)}",
            }

        return for_subscriber

    def factory(
        self,
        name: str,
        rendered: Rendered,
        *,
        message_key: str,
        date: datetime,
        subject: str | None = None,
    ) -> MessageFactory:
        """The message factory of one issue of ``name``."""
        newsletter = self.config.newsletter(name)
        return MessageFactory(
            rendered,
            sender=newsletter.sender,
            reply_to=newsletter.reply_to,
            list_id=f'"{newsletter.title}" <{list_id(name, newsletter.list, newsletter.sender)}>',
            links=self.links(newsletter.list),
            message_key=message_key,
            date=date,
            unsubscribe_mailto=self.config.unsubscribe_mailto,
            subject=subject,
        )

    # -- preview -------------------------------------------------------------

    def _sample_subscriber(self, list_name: str) -> Subscriber:
        with self.store.session() as session:
            row = session.scalar(
                select(SubscriberRow)
                .join(ListRow, ListRow.id == SubscriberRow.list_id)
                .where(ListRow.name == list_name, SubscriberRow.status == "active")
                .order_by(SubscriberRow.id)
            )
        if row is None:
            return PREVIEW_SUBSCRIBER
        return Subscriber(id=row.id, email=row.email, name=row.name, list=list_name)

    async def preview(self, name: str, out_dir: Path) -> PreviewFiles | Built:
        """Write ``NAME.html``, ``NAME.txt`` and ``NAME.eml`` of the next issue into
        ``out_dir``; sends nothing, marks nothing sent. Returns the ``Built`` alone when
        there is nothing new to preview."""
        built = await self.build(name)
        if built.rendered is None or built.issue is None:
            return built
        newsletter = self.config.newsletter(name)
        subscriber = self._sample_subscriber(newsletter.list)
        links = self.links(newsletter.list)(subscriber)
        greeting = f"Hi {subscriber.name}," if subscriber.name else "Hello,"
        text_values = {"greeting": greeting, **links}
        html_values = {k: html_lib.escape(v) for k, v in text_values.items()}
        factory = self.factory(
            name,
            built.rendered,
            message_key=f"{name}.{built.issue.number}.preview",
            date=self.now(),
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        files = PreviewFiles(
            html=out_dir / f"{name}.html",
            text=out_dir / f"{name}.txt",
            eml=out_dir / f"{name}.eml",
            built=built,
        )
        files.html.write_text(
            fill_slots(built.rendered.html, built.rendered, html_values), encoding="utf-8"
        )
        files.text.write_text(
            fill_slots(built.rendered.text, built.rendered, text_values), encoding="utf-8"
        )
        files.eml.write_bytes(factory.build(subscriber).data)
        return files

    # -- run -----------------------------------------------------------------

    def _unfinished(self, name: str) -> IssueRow | None:
        with self.store.session() as session:
            return session.scalar(
                select(IssueRow)
                .where(IssueRow.newsletter == name, IssueRow.status == "sending")
                .order_by(IssueRow.id)
            )

    async def run(
        self,
        name: str,
        *,
        dry_run: bool = False,
        progress: Callable[[SendProgress, int], None] | None = None,
    ) -> RunReport:
        """Send the next issue of ``name`` to its list and record it; resume an unfinished
        issue first. With ``dry_run`` nothing is sent or recorded."""
        newsletter = self.config.newsletter(name)
        if newsletter.backend not in self.config.backends:
            raise ConfigError(f"newsletters.{name}.backend: '{newsletter.backend}' is not defined.")
        row = None if dry_run else self._unfinished(name)
        built: Built | None = None
        resumed = row is not None
        if row is None:
            built = await self.build(name)
            with self.store.session() as session:
                recipients = count_active(session, newsletter.list)
            if (
                built.issue is None
                or built.rendered is None
                or len(built.issue.items) < max(newsletter.min_items, 1)
            ):
                found = len(built.issue.items) if built.issue else 0
                message = (
                    f"Nothing to send for '{name}': no new articles since the last issue."
                    if not found
                    else f"Nothing sent for '{name}': {found} new article(s), fewer than min_items ({newsletter.min_items})."
                )
                return RunReport(
                    name, None, found, recipients, None, built.sources, built.problems, message
                )
            if dry_run:
                return RunReport(
                    name,
                    built.issue.number,
                    len(built.issue.items),
                    recipients,
                    None,
                    built.sources,
                    built.problems,
                    f"Dry run: issue #{built.issue.number} of '{name}' with {len(built.issue.items)} item(s) "
                    f"would go to {recipients} subscriber(s) of '{newsletter.list}'. Nothing was sent.",
                )
            row = self._record_issue(name, newsletter, built)
        backend = make_backend(newsletter.backend, self.config.backends[newsletter.backend])
        factory = self.factory(
            name, _rendered(row), message_key=f"{name}.{row.number}.{row.id}", date=row.created_at
        )
        with self.store.session() as session:
            total = (
                session.scalar(
                    select(func.count(DeliveryRow.id)).where(
                        DeliveryRow.issue_id == row.id, DeliveryRow.status == "queued"
                    )
                )
                or 0
            )
            items = (
                session.scalar(
                    select(func.count(IssueItemRow.id)).where(IssueItemRow.issue_id == row.id)
                )
                or 0
            )

        def advance(snapshot: SendProgress) -> None:
            if progress:
                progress(snapshot, total)

        async with backend:
            report = await send_issue(self.store, row.id, factory, backend, progress=advance)
        verb = "Resumed and sent" if resumed else "Sent"
        message = (
            f"{verb} issue #{row.number} of '{name}' ({items} item(s)): {report.sent} delivered, "
            f"{report.failed} failed, {report.skipped} skipped."
        )
        return RunReport(
            name,
            row.number,
            items,
            total,
            report,
            built.sources if built else (),
            built.problems if built else (),
            message,
            resumed,
        )

    def _record_issue(self, name: str, newsletter: NewsletterConfig, built: Built) -> IssueRow:
        """Store the issue, its items and a queued ledger row per recipient, in one transaction."""
        assert built.issue is not None and built.rendered is not None
        with self.store.session() as session:
            row = IssueRow(
                newsletter=name,
                number=built.issue.number,
                issue_date=built.issue.date.isoformat(),
                status="sending",
                subject=built.rendered.subject,
                preheader=built.rendered.preheader,
                html=built.rendered.html,
                text=built.rendered.text,
                slots=dict(built.rendered.slots),
                created_at=self.now().replace(microsecond=0),
            )
            session.add(row)
            session.flush()
            for position, (item, article_id) in enumerate(
                zip(built.issue.items, built.article_ids, strict=True)
            ):
                session.add(
                    IssueItemRow(
                        issue_id=row.id,
                        article_id=article_id,
                        position=position,
                        section=item.section,
                        title=item.title,
                        summary=item.summary,
                    )
                )
            queue_deliveries(session, row, newsletter.list)
        return row
