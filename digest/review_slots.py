"""The scheduler's part in editorial review (``review:`` of a newsletter).

``ReviewSlots`` is mixed into ``digest.schedule.Daemon``: it builds each draft
``review.ahead`` of its slot and mails it to the reviewers (``prepare_reviews``, run
every ``review_every`` seconds), and at the slot holds the send until the draft is
approved or ``misfire_grace`` ends (``_review_gate``), then does what ``on_timeout``
says.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config
from .editorial import Editorial
from .errors import DigestError
from .logfmt import duration, kv
from .pipeline import Pipeline
from .store import Store
from .store.editorial import mark_reviewed, reviewed
from .store.runs import finish_slot
from .store.status import RunStatus
from .triggers import make_trigger

log = logging.getLogger("digest.schedule")

#: How often (seconds) drafts due for review are looked for.
REVIEW_EVERY = 300.0
#: How often (seconds) a slot waiting for approval looks again.
APPROVAL_EVERY = 30.0


class ReviewSlots:
    """Review hooks of the daemon; the daemon provides the attributes declared here."""

    config: Config
    store: Store
    scheduler: BackgroundScheduler
    stopping: threading.Event
    clock: Callable[[], datetime]
    #: How often (seconds) drafts due for review are looked for.
    review_every: float = REVIEW_EVERY
    #: How often (seconds) a slot waiting for approval looks again.
    approval_every: float = APPROVAL_EVERY

    def _schedule_reviews(self) -> None:
        """Look for drafts due for review now and every ``review_every`` seconds."""
        self.scheduler.add_job(
            self.prepare_reviews,
            "interval",
            seconds=self.review_every,
            id="reviews",
            jobstore="volatile",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )

    def prepare_reviews(self) -> None:
        """``prepare_review`` for each enabled newsletter under review; one that fails
        is logged and the others go on."""
        for name, newsletter in self.config.newsletters.items():
            if not newsletter.enabled or newsletter.review is None:
                continue
            try:
                self.prepare_review(name)
            except DigestError as exc:
                log.error(kv("review-failed", newsletter=name, error=str(exc)))

    def prepare_review(self, name: str) -> bool:
        """When the next slot of ``name`` is at most ``review.ahead`` away and its review
        mail has not gone out: build the draft (``Editorial.draft``), mail it to the
        reviewers and record the slot as reviewed. True when it did."""
        config = self.config
        newsletter = config.newsletter(name)
        review = newsletter.review
        if review is None:
            return False
        now = self.clock()
        upcoming = make_trigger(newsletter).get_next_fire_time(None, now)
        if upcoming is None or upcoming - review.ahead > now:
            return False
        return self._draft_for_review(config, name, upcoming.astimezone(UTC))

    def _draft_for_review(self, config: Config, name: str, slot: datetime) -> bool:
        """Build the draft of ``name`` for ``slot`` and mail it to the reviewers, unless
        that was done for this slot already. True when it did."""
        editorial = Editorial(Pipeline(config, self.store))
        if editorial.reviewed_slot(name) == slot:
            return False
        result = asyncio.run(editorial.draft(name, config.root / "preview"))
        if not isinstance(result, tuple):
            log.info(kv("review-nothing", newsletter=name, slot=slot, reason="no new articles"))
            return False
        status, files = result
        deliveries = asyncio.run(editorial.send_review(name))
        mark_reviewed(self.store, name, slot)
        log.info(
            kv(
                "review-draft",
                newsletter=name,
                slot=slot,
                issue=status.number,
                version=status.version,
                items=len(status.items),
                reviewers=len(deliveries),
                preview=files.html,
            )
        )
        return True

    def _review_gate(self, config: Config, name: str, slot: datetime) -> bool | None:
        """Before ``slot`` of ``name`` runs: for a newsletter under ``review.required``,
        wait until its draft is approved or the slot's ``misfire_grace`` ends, then do
        what ``on_timeout`` says. True: send, approval required (approved, or no review
        needed); False: send the draft unapproved (``on_timeout: send``); None: the
        slot ends here, recorded (``on_timeout: skip``, or the daemon is stopping)."""
        newsletter = config.newsletter(name)
        review = newsletter.review
        if review is None or not review.required:
            return True
        deadline = slot + newsletter.misfire_grace
        # A daemon that was down during the `ahead` hours drafts (and asks) now.
        try:
            self._draft_for_review(config, name, slot)
        except DigestError as exc:  # the slot still waits for an approval from elsewhere
            log.error(kv("review-failed", newsletter=name, slot=slot, error=str(exc)))
        waiting = False
        while True:
            draft, state = reviewed(self.store, name)
            if draft is not None and state is not None and state.approved:
                if waiting:
                    log.info(kv("review-approved", newsletter=name, slot=slot))
                return True
            if self.stopping.is_set():
                finish_slot(
                    self.store, name, slot, RunStatus.INTERRUPTED, "awaiting approval", None
                )
                return None
            if self.clock() >= deadline:
                break
            if not waiting:
                waiting = True
                log.info(kv("review-waiting", newsletter=name, slot=slot, until=deadline))
            self.stopping.wait(self.approval_every)
        grace = duration(newsletter.misfire_grace)
        log.warning(
            kv("review-timeout", newsletter=name, slot=slot, grace=grace, action=review.on_timeout)
        )
        if review.on_timeout == "send":
            return False
        message = (
            f"Not approved within misfire_grace ({grace}) of the slot: skipped (on_timeout: skip)."
        )
        finish_slot(self.store, name, slot, RunStatus.NOTHING, message, None)
        return None
