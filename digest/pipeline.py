"""The pipeline of one newsletter: collect, extract, compose, render, send, record.

``Pipeline`` wires the stages together around the store. ``build`` makes the next
issue without changing anything but the article cache; ``preview`` writes it to
files and freezes it as the newsletter's draft; ``run`` sends it (or resumes the
issue a crashed run left unfinished) and records what went out.

The preview is the issue: ``preview`` stores what it built as the newsletter's draft
(``issue_drafts``, one per newsletter, replaced by the next preview). ``run`` sends
that draft byte for byte unless new articles arrived since, in which case it builds
afresh and says so. A draft marks nothing sent.
"""

from __future__ import annotations

import html as html_lib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import delete, func, or_, select

from .backends import make_backend
from .collect import SourceReport, collect
from .collect.cache import HttpCache
from .collect.fetch import Fetcher
from .compose import compose
from .config import Config, NewsletterConfig
from .dispatch import SendOptions, SendProgress, SendReport, queue_deliveries, send_issue
from .errors import ConfigError, ExtractError, SubscriberError
from .extract import extract
from .models import Article, Delivery, Issue, Rendered, Subscriber
from .personalize import MessageFactory, fill_slots, list_id
from .render import Renderer, ui_text
from .sections import per_reader_sections
from .store import Store
from .store.tables import (
    ArticleRow,
    DeliveryRow,
    IssueDraftRow,
    IssueItemRow,
    IssueRow,
    ListRow,
    SubscriberRow,
    utcnow,
)
from .subscribers import count_active, normalize_email, sendable_clause
from .tokens import make_token, require_secret
from .urls import canonical_url

log = logging.getLogger("digest.pipeline")

PREVIEW_SUBSCRIBER = Subscriber(id=0, email="reader@example.org", name="Preview Reader")
TEST_PREFIX = "[TEST] "


@dataclass(frozen=True, slots=True)
class Built:
    """The next issue of a newsletter, rendered, with what collection met on the way."""

    issue: Issue | None
    rendered: Rendered | None
    article_ids: tuple[int, ...]
    sources: tuple[SourceReport, ...]
    problems: tuple[str, ...]
    candidate_ids: tuple[int, ...] = ()


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
class TestSend:
    """What ``send_test`` did: the issue number (``None`` with nothing to send), one
    ``Delivery`` per usable address, and the addresses it could not use."""

    __test__ = False  # not a pytest test class

    issue_number: int | None
    deliveries: tuple[Delivery, ...]
    problems: tuple[str, ...]
    built: Built


@dataclass(frozen=True, slots=True)
class Sample:
    """An issue filled in for one (sample) recipient: what they would see."""

    html: str
    text: str
    eml: bytes


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


def _draft_items(built: Built) -> list[dict[str, Any]]:
    """The issue_items of ``built`` in email order, as JSON-ready dicts."""
    assert built.issue is not None
    return [
        {
            "article_id": article_id,
            "section": item.section,
            "title": item.title,
            "summary": item.summary,
        }
        for item, article_id in zip(built.issue.items, built.article_ids, strict=True)
    ]


def _rendered(row: IssueRow | IssueDraftRow) -> Rendered:
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
            self._secret = require_secret(self.config)
        return self._secret

    def _fetcher(self) -> Fetcher:
        client = None
        if self.transport is not None:
            client = httpx.AsyncClient(transport=self.transport, follow_redirects=True)
        # An injected transport never reaches the network, so there is nothing to guard.
        return Fetcher(
            client,
            user_agent=self.config.http_user_agent,
            cache=HttpCache(self.store),
            check_addresses=self.transport is None,
        )

    # -- collect and extract -------------------------------------------------

    def _known(self, keys: Collection[str]) -> set[str]:
        """Those of ``keys`` (canonical URLs, GUIDs) the store already has an article for."""
        wanted = list(keys)
        found: set[str] = set()
        with self.store.session() as session:
            for start in range(0, len(wanted), 500):  # stay far below any bind-parameter cap
                chunk = wanted[start : start + 500]
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

    def _last_issue(self, name: str) -> datetime | None:
        """When the newest issue of ``name`` was made (sitemaps list only what is newer)."""
        with self.store.session() as session:
            return session.scalar(
                select(func.max(IssueRow.created_at)).where(IssueRow.newsletter == name)
            )

    async def gather(
        self, name: str, newsletter: NewsletterConfig
    ) -> tuple[list[tuple[int, Article]], tuple[SourceReport, ...], tuple[str, ...]]:
        """Collect and extract new pages into the store; return the newsletter's unsent
        articles (id, article) that its sources list now, the source reports and the
        extraction problems."""
        fetcher = self._fetcher()
        async with fetcher:
            collected = await collect(
                newsletter.sources, fetcher, known=self._known, since=self._last_issue(name)
            )
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
        started = time.perf_counter()
        articles, sources, problems = await self.gather(name, newsletter)
        log.info(
            "event=stage stage=collect newsletter=%s sources=%d source_errors=%d unsent=%d problems=%d seconds=%.2f",
            name,
            len(sources),
            sum(len(report.errors) for report in sources),
            len(articles),
            len(problems),
            time.perf_counter() - started,
        )
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
        started = time.perf_counter()
        issue, rendered = renderer.fit(issue)
        log.info(
            "event=stage stage=render newsletter=%s issue=%d items=%d seconds=%.2f",
            name,
            issue.number,
            len(issue.items),
            time.perf_counter() - started,
        )
        by_url = {article.url: article_id for article_id, article in articles}
        ids = tuple(by_url[item.url] for item in issue.items)
        candidates = tuple(article_id for article_id, _ in articles)
        return Built(issue, rendered, ids, sources, problems, candidates)

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
            greet=ui_text(newsletter.language).greet,
        )

    # -- preview -------------------------------------------------------------

    def _sample_subscriber(self, list_name: str) -> Subscriber:
        with self.store.session() as session:
            row = session.scalar(
                select(SubscriberRow)
                .join(ListRow, ListRow.id == SubscriberRow.list_id)
                .where(ListRow.name == list_name, sendable_clause())
                .order_by(SubscriberRow.id)
            )
        if row is None:
            return PREVIEW_SUBSCRIBER
        return Subscriber(id=row.id, email=row.email, name=row.name, list=list_name)

    async def preview(self, name: str, out_dir: Path) -> PreviewFiles | Built:
        """Write ``NAME.html``, ``NAME.txt`` and ``NAME.eml`` of the next issue into
        ``out_dir`` and freeze it as the draft ``run`` will send; sends nothing, marks
        nothing sent. Returns the ``Built`` alone when there is nothing new to preview."""
        built = await self.build(name)
        if built.rendered is None or built.issue is None:
            return built
        sample = self.sample(name, built)
        self.freeze(name, built)
        out_dir.mkdir(parents=True, exist_ok=True)
        files = PreviewFiles(
            html=out_dir / f"{name}.html",
            text=out_dir / f"{name}.txt",
            eml=out_dir / f"{name}.eml",
            built=built,
        )
        files.html.write_text(sample.html, encoding="utf-8")
        files.text.write_text(sample.text, encoding="utf-8")
        files.eml.write_bytes(sample.eml)
        return files

    def sample(self, name: str, built: Built) -> Sample:
        """``built`` (which must hold an issue) as the first active subscriber of the
        list would get it: HTML and text filled in, and the whole message."""
        assert built.issue is not None and built.rendered is not None
        newsletter = self.config.newsletter(name)
        subscriber = self._sample_subscriber(newsletter.list)
        links = self.links(newsletter.list)(subscriber)
        greeting = ui_text(newsletter.language).greet(subscriber.name)
        text_values = {"greeting": greeting, **links}
        html_values = {k: html_lib.escape(v) for k, v in text_values.items()}
        factory = self.factory(
            name,
            built.rendered,
            message_key=f"{name}.{built.issue.number}.preview",
            date=self.now(),
        )
        return Sample(
            html=fill_slots(built.rendered.html, built.rendered, html_values),
            text=fill_slots(built.rendered.text, built.rendered, text_values),
            eml=factory.build(subscriber).data,
        )

    # -- send-test -----------------------------------------------------------

    async def send_test(self, name: str, addresses: Sequence[str]) -> TestSend:
        """Send the next issue of ``name`` (its draft when still current) to ``addresses``
        with "[TEST]" before the subject, through the newsletter's backend. Records
        nothing: no issue, no ledger row, no article marked sent. An unusable address
        is reported and the others still get the message."""
        newsletter = self.config.newsletter(name)
        built = await self.build(name)
        if built.issue is None or built.rendered is None:
            return TestSend(None, (), (), built)
        draft, _ = self.draft(name, built)
        rendered = _rendered(draft) if draft is not None else built.rendered
        factory = self.factory(
            name,
            rendered,
            message_key=f"{name}.{built.issue.number}.test.{self.now():%Y%m%d%H%M%S}",
            date=self.now(),
            subject=TEST_PREFIX + rendered.subject,
        )
        messages, problems = [], []
        for position, address in enumerate(addresses, start=1):
            try:
                email, _ = normalize_email(address)
                messages.append(factory.build(Subscriber(id=-position, email=email)))
            except SubscriberError as exc:
                problems.append(f"{address!r}: {exc}")
        backend = make_backend(newsletter.backend, self.config.backends[newsletter.backend])
        async with backend:
            deliveries = await backend.send(messages)
        return TestSend(built.issue.number, tuple(deliveries), tuple(problems), built)

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
        batch_size: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> RunReport:
        """Send the next issue of ``name`` to its list and record it; resume an unfinished
        issue first. With ``dry_run`` nothing is sent or recorded. ``stop()`` is asked
        between batches (see ``dispatch.send_issue``): a stopped send stays resumable."""
        newsletter = self.config.newsletter(name)
        require_secret(
            self.config
        )  # a missing signing key stops the run before anything is recorded
        if newsletter.backend not in self.config.backends:
            raise ConfigError(f"newsletters.{name}.backend: '{newsletter.backend}' is not defined.")
        row = None if dry_run else self._unfinished(name)
        built: Built | None = None
        notes: tuple[str, ...] = ()
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
                    notes=built.rendered.notes,
                )
            draft, stale = self.draft(name, built)
            notes = (*built.rendered.notes, stale) if stale else built.rendered.notes
            if draft is not None:
                row = self._promote(draft, newsletter)
                notes = (*notes, f"Sent issue #{row.number} exactly as previewed.")
            else:
                row = self._record_issue(name, newsletter, built)
        backend = make_backend(newsletter.backend, self.config.backends[newsletter.backend])
        # Readers who chose sections get a variant rendered once per distinct choice.
        make = partial(
            self.factory, name, message_key=f"{name}.{row.number}.{row.id}", date=row.created_at
        )
        factory = per_reader_sections(self.config, self.store, row, make(_rendered(row)), make)
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

        started = time.perf_counter()
        async with backend:
            report = await send_issue(
                self.store,
                row.id,
                factory,
                backend,
                options=SendOptions(batch_size=batch_size),
                progress=advance,
                stop=stop,
            )
        log.info(
            "event=stage stage=send newsletter=%s issue=%d queued=%d sent=%d failed=%d skipped=%d interrupted=%s seconds=%.2f",
            name,
            row.number,
            total,
            report.sent,
            report.failed,
            report.skipped,
            report.interrupted,
            time.perf_counter() - started,
        )
        verb = "Resumed and sent" if resumed else "Sent"
        if report.interrupted:
            verb = "Stopped before the end of"
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
            notes,
        )

    def _record_issue(self, name: str, newsletter: NewsletterConfig, built: Built) -> IssueRow:
        """Store the issue, its items and a queued ledger row per recipient, in one
        transaction; a draft of ``name`` (out of date, or this issue would reuse it) goes."""
        assert built.issue is not None and built.rendered is not None
        with self.store.session() as session:
            session.execute(delete(IssueDraftRow).where(IssueDraftRow.newsletter == name))
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
            for position, entry in enumerate(_draft_items(built)):
                session.add(IssueItemRow(issue_id=row.id, position=position, **entry))
            queue_deliveries(session, row, newsletter.list)
        return row

    def freeze(self, name: str, built: Built) -> IssueDraftRow:
        """Keep ``built`` as the draft of ``name``, replacing any earlier one: what
        ``run`` will send unless new articles arrive first. Marks nothing sent."""
        assert built.issue is not None and built.rendered is not None
        with self.store.session() as session:
            session.execute(delete(IssueDraftRow).where(IssueDraftRow.newsletter == name))
            row = IssueDraftRow(
                newsletter=name,
                number=built.issue.number,
                issue_date=built.issue.date.isoformat(),
                subject=built.rendered.subject,
                preheader=built.rendered.preheader,
                html=built.rendered.html,
                text=built.rendered.text,
                slots=dict(built.rendered.slots),
                items=_draft_items(built),
                # Real time, not the injectable clock: it is compared with the
                # collected_at of articles, which is real time too.
                created_at=utcnow(),
            )
            session.add(row)
        return row

    def draft(self, name: str, built: Built) -> tuple[IssueDraftRow | None, str]:
        """The frozen draft of ``name`` if it is still the next issue, and a note when a
        draft exists but is out of date (new articles arrived since the preview)."""
        candidates = set(built.candidate_ids)
        with self.store.session() as session:
            row = session.scalar(select(IssueDraftRow).where(IssueDraftRow.newsletter == name))
            if row is None:
                return None, ""
            frozen = {entry["article_id"] for entry in row.items}
            newer = session.scalar(
                select(func.count(ArticleRow.id)).where(
                    ArticleRow.id.in_(candidates - frozen),
                    ArticleRow.collected_at > row.created_at,
                )
            )
        if newer or not frozen <= candidates or row.number != self._next_number(name):
            reason = f"{newer} new article(s) arrived" if newer else "its articles changed"
            return None, (
                f"The previewed issue #{row.number} was rebuilt: {reason} since the preview."
            )
        return row, ""

    def _promote(self, draft: IssueDraftRow, newsletter: NewsletterConfig) -> IssueRow:
        """The draft becomes the issue being sent, in one transaction: the issue row
        with the draft's exact content, its items, its ledger rows; the draft goes."""
        with self.store.session() as session:
            row = IssueRow(
                newsletter=draft.newsletter,
                number=draft.number,
                issue_date=draft.issue_date,
                status="sending",
                subject=draft.subject,
                preheader=draft.preheader,
                html=draft.html,
                text=draft.text,
                slots=dict(draft.slots),
                created_at=self.now().replace(microsecond=0),
            )
            session.add(row)
            session.flush()
            for position, entry in enumerate(draft.items):
                session.add(IssueItemRow(issue_id=row.id, position=position, **entry))
            session.execute(delete(IssueDraftRow).where(IssueDraftRow.id == draft.id))
            queue_deliveries(session, row, newsletter.list)
        return row
