"""The pipeline of one newsletter: collect, extract, compose, render, send, record.

``Pipeline`` keeps the order of the stages; what they keep goes through the store
(``digest.store``). ``build`` makes the next issue without changing anything but the
article cache; ``preview`` writes it to files and freezes it as the newsletter's
draft; ``run`` sends it (or resumes the issue a crashed run left unfinished).

The preview is the issue: ``preview`` stores what it built as the newsletter's draft
(one per newsletter, replaced by the next preview). ``run`` sends that draft byte for
byte unless new articles arrived since, in which case it builds afresh and says so.
A draft marks nothing sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from . import approval
from .backends import Backend, make_backend
from .collect import SourceReport
from .compose import compose
from .config import Config, NewsletterConfig
from .dispatch import SendOptions, SendProgress, SendReport, send_issue
from .errors import ConfigError
from .gathering import gather
from .hosts import worker_id
from .messages import Messages
from .models import Article, Rendered
from .personalize import MessageFactory
from .render import Renderer
from .reports import Built, PreviewFiles, RunReport, Sample, TestSend
from .store import Store, issues, ledger
from .subscribers import count_active
from .tokens import require_secret

log = logging.getLogger("digest.pipeline")


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
        self.messages = Messages(config, store, now)

    async def gather(
        self, name: str, newsletter: NewsletterConfig
    ) -> tuple[list[tuple[int, Article]], tuple[SourceReport, ...], tuple[str, ...]]:
        """``digest.gathering.gather`` with this pipeline's store and transport."""
        return await gather(self.config, self.store, name, newsletter, self.transport)

    async def build(self, name: str) -> Built:
        """The next issue of ``name`` from what its sources list and it has not sent."""
        newsletter = self.config.newsletter(name)
        renderer = Renderer(self.config, newsletter)
        started = time.perf_counter()
        unsent, sources, problems = await self.gather(name, newsletter)
        log.info(
            "event=stage stage=collect newsletter=%s sources=%d source_errors=%d unsent=%d problems=%d seconds=%.2f",
            name,
            len(sources),
            sum(len(report.errors) for report in sources),
            len(unsent),
            len(problems),
            time.perf_counter() - started,
        )
        if not unsent:
            return Built(None, None, (), sources, problems)
        local_date = self.now().astimezone(ZoneInfo(newsletter.timezone)).date()
        issue = compose(
            name,
            newsletter,
            [article for _, article in unsent],
            number=issues.next_number(self.store, name),
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
        by_url = {article.url: article_id for article_id, article in unsent}
        ids = tuple(by_url[item.url] for item in issue.items)
        candidates = tuple(article_id for article_id, _ in unsent)
        return Built(issue, rendered, ids, sources, problems, candidates)

    # -- messages (see ``digest.messages``) ----------------------------------

    def factory(
        self, name: str, rendered: Rendered, *, message_key: str, date: datetime
    ) -> MessageFactory:
        """The message factory of one issue of ``name``."""
        return self.messages.factory(name, rendered, message_key=message_key, date=date)

    def sample(self, name: str, built: Built) -> Sample:
        """``built`` as the first subscriber of the list would get it."""
        return self.messages.sample(name, built)

    # -- preview and send-test -----------------------------------------------

    async def preview(self, name: str, out_dir: Path) -> PreviewFiles | Built:
        """Write ``NAME.html``, ``NAME.txt`` and ``NAME.eml`` of the next issue into
        ``out_dir`` and freeze it as the draft ``run`` will send; sends nothing, marks
        nothing sent. Returns the ``Built`` alone when there is nothing new to preview."""
        built = await self.build(name)
        if built.rendered is None or built.issue is None:
            return built
        issues.freeze(self.store, name, built.composed)  # the draft run will send
        return self.write_preview(name, built, out_dir)

    def write_preview(self, name: str, built: Built, out_dir: Path) -> PreviewFiles:
        """``Messages.write_preview``: ``built`` as files in ``out_dir``."""
        return self.messages.write_preview(name, built, out_dir)

    async def send_test(self, name: str, addresses: Sequence[str]) -> TestSend:
        """Send the next issue of ``name`` to ``addresses`` as a test, recording nothing
        (``Messages.send_test``)."""
        built = await self.build(name)
        return await self.messages.send_test(name, built, addresses)

    def backend(self, name: str) -> Backend:
        """A new backend of newsletter ``name`` (to use as an async context manager)."""
        newsletter = self.config.newsletter(name)
        return make_backend(newsletter.backend, self.config.backends[newsletter.backend])

    # -- issues --------------------------------------------------------------

    def _record_issue(
        self, name: str, newsletter: NewsletterConfig, built: Built
    ) -> issues.StoredIssue | None:
        """Store ``built`` as the issue being sent, with its items and ledger rows."""
        return issues.record(self.store, name, built.composed, newsletter.list_name, self._stamp())

    def _record(
        self, name: str, newsletter: NewsletterConfig, built: Built
    ) -> tuple[issues.StoredIssue | None, tuple[str, ...]]:
        """The issue to send: the draft exactly as previewed while it is still current,
        else ``built``; and the notes for the report. ``None`` when another run recorded
        this issue first."""
        assert built.rendered is not None
        draft, stale = issues.current_draft(self.store, name, built.candidate_ids)
        notes = (*built.rendered.notes, stale) if stale else built.rendered.notes
        if draft is None:
            return self._record_issue(name, newsletter, built), notes
        stored = issues.record(
            self.store, name, draft.composed, newsletter.list_name, self._stamp()
        )
        if stored is None:
            return None, notes
        return stored, (*notes, f"Sent issue #{stored.number} exactly as previewed.")

    def _stamp(self) -> datetime:
        return self.now().replace(microsecond=0)

    # -- run -----------------------------------------------------------------

    async def prepare(
        self, name: str, *, dry_run: bool = False, require_approval: bool = True
    ) -> RunReport | tuple[issues.StoredIssue, Built | None, tuple[str, ...]]:
        """The issue of ``name`` to send now, its rows queued: the unfinished one (which
        another run may be sending: this one joins it), else the next one built and
        recorded; with the ``Built`` (``None`` when resumed) and notes for the report.
        A ``RunReport`` instead when there is nothing to send (or ``dry_run``)."""
        newsletter = self.config.newsletter(name)
        # A missing signing key stops the run before anything is recorded.
        require_secret(self.config)
        if newsletter.backend not in self.config.backends:
            raise ConfigError(f"newsletters.{name}.backend: '{newsletter.backend}' is not defined.")
        stored = None if dry_run else issues.unfinished(self.store, name)
        notes: tuple[str, ...] = ()
        if stored is not None:
            if issues.held_elsewhere(self.store, stored.id, worker_id()):
                notes = (
                    f"Issue #{stored.number} is being sent by another run; this run joins it.",
                )
            return stored, None, notes
        if not dry_run and newsletter.review is not None:
            awaiting, reviewed, notes = approval.gate(
                self.store, name, newsletter, require_approval
            )
            if awaiting is not None:
                return awaiting
            if reviewed is not None:
                recorded = self._record_issue(name, newsletter, reviewed)
                return (recorded, reviewed, notes) if recorded else self._joined(name, reviewed)
        built = await self.build(name)
        with self.store.session() as session:
            recipients = count_active(session, newsletter.list_name)
        unsent = RunReport.unsent(name, newsletter, built, recipients, dry_run)
        if unsent is not None:
            return unsent
        recorded, notes = self._record(name, newsletter, built)
        if recorded is None:
            return self._joined(name, built)
        return recorded, built, notes

    def _joined(
        self, name: str, built: Built
    ) -> RunReport | tuple[issues.StoredIssue, Built | None, tuple[str, ...]]:
        """Another run started at the same moment recorded this issue first: join it
        (or report it sent, when that run already finished it)."""
        joined = issues.unfinished(self.store, name)
        assert built.issue is not None
        number = joined.number if joined else built.issue.number
        notes = (
            f"Issue #{number} was started by another run at the same time; this run joins it.",
        )
        if joined is None:
            return RunReport.sent(name, number, 0, 0, SendReport(), built, notes)
        return joined, built, notes

    async def run(
        self,
        name: str,
        *,
        dry_run: bool = False,
        progress: Callable[[SendProgress, int], None] | None = None,
        batch_size: int | None = None,
        stop: Callable[[], bool] | None = None,
        require_approval: bool = True,
    ) -> RunReport:
        """Send the next issue of ``name`` to its list and record it; resume an unfinished
        issue first. With ``dry_run`` nothing is sent or recorded. ``stop()`` is asked
        between batches (see ``dispatch.send_issue``): a stopped send stays resumable.

        A newsletter under ``review`` sends its editorial draft exactly as drafted and
        edited (``digest.editorial``); with ``review.required`` only once approved
        (unless ``require_approval`` is False: the scheduler's ``on_timeout: send``),
        and unapproved it sends nothing and says it awaits approval."""
        newsletter = self.config.newsletter(name)
        prepared = await self.prepare(name, dry_run=dry_run, require_approval=require_approval)
        if isinstance(prepared, RunReport):
            return prepared
        stored, built, notes = prepared
        total = ledger.count_queued(self.store, stored.id)

        def advance(snapshot: SendProgress) -> None:
            if progress:
                progress(snapshot, total)

        started = time.perf_counter()
        backend = make_backend(newsletter.backend, self.config.backends[newsletter.backend])
        async with backend:
            report = await send_issue(
                self.store,
                stored.id,
                self.messages.for_issue(stored),
                backend,
                options=SendOptions(batch_size=batch_size),
                progress=advance,
                stop=stop,
            )
        log.info(
            "event=stage stage=send newsletter=%s issue=%d queued=%d sent=%d failed=%d skipped=%d interrupted=%s seconds=%.2f",
            name,
            stored.number,
            total,
            report.sent,
            report.failed,
            report.skipped,
            report.interrupted,
            time.perf_counter() - started,
        )
        return RunReport.sent(name, stored.number, stored.items, total, report, built, notes)
