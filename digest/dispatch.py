"""Dispatch: sending an issue to a list with a ledger, so nothing is lost or sent twice.

The ledger (``digest.store.ledger``) holds one row per (issue, subscriber), created
``queued`` with the issue. The unit of work is a batch: a worker *claims* up to
``batch_size`` queued rows (workers on several machines sharing one database never
take the same rows), builds the messages, sends them through the backend and
settles every row of the batch in one transaction:

- ``sent`` with the provider's id;
- ``failed`` with the reason (a permanent refusal, or ``max_attempts`` transient
  ones); a hard bounce also sets the subscriber's status to ``bounced``;
- ``skipped``: the subscriber is no longer active when their turn comes;
- still ``queued`` after a transient failure, with ``not_before`` set by
  exponential backoff with jitter.

A failure that says nothing about the recipient (``Delivery.refused``: a policy,
relay, authentication or content refusal, or a server that cannot be reached) never
marks a row failed by itself and never suppresses anyone. Once ``max_refusals``
rows (the backend's setting, 5 by default; or every row, on a shorter list) are refused in one send, or a row exhausts
its attempts on an unreachable server, the send stops with ``SendRefused``: those
rows stay ``queued`` as they were and the issue unfinished, so the run after the
operator fixed the cause resumes it. A row refused ``max_attempts`` times while the
rest goes through is settled ``failed`` (the refusal was about that message), still
without touching the subscriber.

``backend.connections`` workers run at once, so at most ``connections x batch_size``
messages are in flight: a process killed between the server accepting a message and
the ledger commit can send at most that many twice (``in_flight_window``). While
batches are in flight a heartbeat thread renews their claims every quarter of the
lease, so a batch slower than the lease (a slow relay, a ``rate:`` limit) is never
claimed by anyone else; the progress counts only rows this run settled while still
holding them, so it never exceeds the recipients. A run started again (``run NAME``)
first frees the claims of dead processes on this host, then carries on with what is
still queued; claims of a dead process on another host are free once its lease (a
minute) runs out. Ctrl-C and ``SendAborted`` (wrong credentials, TLS failure) free
this process's claims: those rows stay queued and nothing is marked that did not
happen.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from .backends import Backend
from .errors import DigestError, NothingWanted, SendAborted, SendRefused, SubscriberError
from .hosts import worker_id
from .models import Delivery, DeliveryStatus, Message, Subscriber
from .store import Store, ledger, utcnow
from .store.ledger import Claimed, Settlement

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5

_R = TypeVar("_R")


class MessageSource(Protocol):
    """What dispatch asks for each recipient's message (``personalize.MessageFactory``,
    ``sections.SectionedFactory``). ``build`` raises ``NothingWanted`` when the reader
    wants nothing of the issue and ``SubscriberError`` when the address is unusable."""

    def build(self, subscriber: Subscriber) -> Message: ...


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How dispatch paces itself. ``batch_size`` None: the backend's ``dispatch_batch``."""

    batch_size: int | None = None
    max_attempts: int = MAX_ATTEMPTS
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    #: Seconds a claim lasts without a heartbeat: how long a dead worker's rows on
    #: another host wait.
    lease: float = 60.0
    worker: str = field(default_factory=worker_id)
    #: Rows refused for reasons not about the recipient before the send stops; None:
    #: the backend's ``max_refusals`` setting.
    max_refusals: int | None = None
    #: Free first the claims of processes on this host that died (it reads the issue's
    #: whole queue: a worker process does it at most every 15 seconds, not for every
    #: task; the lease frees them anyway within a minute).
    free_dead: bool = True


@dataclass(frozen=True, slots=True)
class SendProgress:
    """Rows settled so far in this run, by outcome; ``retrying`` are waiting for backoff."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retrying: int = 0

    @property
    def settled(self) -> int:
        return self.sent + self.failed + self.skipped


@dataclass(frozen=True, slots=True)
class SendReport:
    """Outcome of one send: counts by outcome and the reasons of failures, most common first."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    in_flight_window: int = 0
    interrupted: bool = False


def batch_size(backend: Backend, options: SendOptions) -> int:
    """The number of messages a worker claims at once."""
    return max(1, options.batch_size or backend.dispatch_batch)


def in_flight_window(backend: Backend, options: SendOptions) -> int:
    """The most messages a crash can send twice: every worker's batch."""
    return backend.connections * batch_size(backend, options)


_Outcomes = tuple[list[Settlement], list[tuple[str, str]]]


def _reason(delivery: Delivery) -> str:
    # Group reasons without the address, so the report counts kinds of failure.
    return (delivery.error or "failed").replace(delivery.recipient, "<recipient>")


class _Run:
    """One call of ``send_issue``: shared counters and the workers' loop."""

    def __init__(
        self,
        store: Store,
        issue_id: int,
        factory: MessageSource,
        backend: Backend,
        options: SendOptions,
        progress: Callable[[SendProgress], None] | None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.issue_id = issue_id
        self.factory = factory
        self.backend = backend
        self.options = options
        self.progress = progress
        self.size = batch_size(backend, options)
        # Rows settled by this run, by status; TRANSIENT: waiting for a retry.
        self.outcomes: Counter[DeliveryStatus] = Counter()
        self.reasons: Counter[str] = Counter()
        self.claiming = asyncio.Lock()
        self.stop = stop
        self.interrupted = False
        # Refusals not about the recipient, per ledger row, and the most a send takes.
        self.refusals: Counter[int] = Counter()
        self.refusal_limit = options.max_refusals or backend.max_refusals
        self.refused_reasons: Counter[str] = Counter()
        self.unreachable: str = ""
        # The rows this process holds (claimed, not yet settled), which the heartbeat
        # renews; changed by the event loop's threads, read by the heartbeat's.
        self.held: set[int] = set()
        self.held_lock = threading.Lock()
        # Ledger writes running in threads: a cancelled send waits for them (they are
        # short) before freeing what it holds, or a claim committed after the release
        # would stay held until its lease ran out.
        self.writes: set[asyncio.Task[Any]] = set()

    async def _in_thread(self, func: Callable[..., _R], *args: Any) -> _R:
        """``func(*args)`` in a thread, carried on to its end even if the caller is
        cancelled (``drain`` waits for it)."""
        task = asyncio.ensure_future(asyncio.to_thread(func, *args))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for the ledger writes still running in threads."""
        if self.writes:
            await asyncio.wait(set(self.writes))

    def _report_progress(self) -> None:
        if self.progress:
            self.progress(
                SendProgress(
                    sent=self.outcomes[DeliveryStatus.SENT],
                    failed=self.outcomes[DeliveryStatus.FAILED],
                    skipped=self.outcomes[DeliveryStatus.SKIPPED],
                    retrying=self.outcomes[DeliveryStatus.TRANSIENT],
                )
            )

    def _backoff(self, attempts: int) -> float:
        # Equal jitter: half the exponential delay fixed, half random, so retries of a
        # throttled batch spread out instead of coming back together.
        delay = min(self.options.backoff_max, self.options.backoff_base * 2 ** (attempts - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    async def worker(self) -> None:
        settled: _Outcomes = ([], [])
        while True:
            if self.stop is not None and self.stop():
                self.interrupted = True
                await self._in_thread(self._settle, *settled)
                return
            # One transaction records the last batch and claims the next, and it runs in
            # a thread so the other connections keep sending while SQLite commits.
            async with self.claiming:  # one claim at a time per process
                batch = await self._in_thread(self._settle_and_claim, *settled)
            settled = ([], [])
            self._report_progress()
            if not batch:
                wait = await asyncio.to_thread(self._next_wait)
                if wait is None:
                    return
                await asyncio.sleep(wait)
                continue
            settled = await self._send_batch(batch)

    def _settle_and_claim(
        self, rows: Sequence[Settlement], bounced: Sequence[tuple[str, str]]
    ) -> list[Claimed]:
        options = self.options
        recorded, claimed = ledger.settle_and_claim(
            self.store,
            self.issue_id,
            options.worker,
            self.size,
            options.lease,
            rows,
            bounced,
            self.backend.type,
        )
        self._settled(rows, recorded)
        with self.held_lock:
            self.held.update(item.delivery_id for item in claimed)
        return claimed

    def _settled(self, rows: Sequence[Settlement], recorded: Sequence[Settlement]) -> None:
        """Count the rows the ledger recorded (only those this process still held) and
        stop renewing every row of ``rows``."""
        for item in recorded:
            self.outcomes[item.status] += 1
        with self.held_lock:
            self.held.difference_update(item.delivery_id for item in rows)

    def heartbeat(self, stopped: threading.Event) -> None:
        """Renew the claims on the rows in flight every quarter of the lease until
        ``stopped`` (a thread of its own: a busy event loop must not let a claim lapse)."""
        interval = self.options.lease / 4
        while not stopped.wait(interval):
            with self.held_lock:
                ids = sorted(self.held)
            try:
                ledger.renew(self.store, self.options.worker, ids, self.options.lease)
            except Exception:  # the next beat tries again; the lease leaves three more
                log.warning("could not renew the claims in flight", exc_info=True)

    def _next_wait(self) -> float | None:
        """None when no queued row is left for this worker; else how long until one may
        be claimable.

        Rows this process's other workers are sending do not count: those workers
        carry on with whatever comes back for a retry, so an idle worker ends instead
        of polling until the last batch is settled.
        """
        queued = ledger.queued(self.store, self.issue_id, self.options.worker)
        if queued.total == queued.held:
            return None
        if queued.not_before is not None:
            return min(5.0, max(0.05, (queued.not_before - utcnow()).total_seconds()))
        return 0.5

    async def _send_batch(self, batch: Sequence[Claimed]) -> _Outcomes:
        """Send one claimed batch; the rows to record (and the bounces), recorded by the
        caller with its next claim. What raises records its own rows first."""
        settled: list[Settlement] = []
        messages: list[Message] = []
        by_subscriber: dict[int, Claimed] = {}
        for item in batch:
            unsent: tuple[DeliveryStatus, str] | None = None  # when nothing goes out
            if item.status != "active":
                unsent = (DeliveryStatus.SKIPPED, item.status)
            else:
                try:
                    message = self.factory.build(item.subscriber)
                except NothingWanted:
                    unsent = (DeliveryStatus.SKIPPED, "no chosen section")
                except SubscriberError as exc:
                    unsent = (DeliveryStatus.FAILED, str(exc))
                    self.reasons["unusable address"] += 1
            if unsent is not None:
                status, error = unsent
                settled.append(Settlement(item.delivery_id, status, item.attempts, error))
                continue
            messages.append(message)
            by_subscriber[message.subscriber_id] = item
        aborted: SendAborted | None = None
        try:
            deliveries = await self.backend.send(messages) if messages else []
        except SendAborted as exc:
            # Record what went out before the backend gave up; the rest stays queued.
            deliveries, aborted = list(exc.partial), exc
        except BaseException:
            # Not one outcome is known: the rows stay queued and claimable.
            await self._in_thread(self._settle, settled)
            raise
        bounced: list[tuple[str, str]] = []
        message_ids = {m.subscriber_id: m.message_id for m in messages}
        for delivery in deliveries:
            settled.append(
                self._outcome(
                    delivery,
                    by_subscriber[delivery.subscriber_id],
                    message_ids[delivery.subscriber_id],
                )
            )
            if settled[-1].status is DeliveryStatus.FAILED and delivery.bounced:
                bounced.append((delivery.recipient, delivery.error))
        stopped = aborted or self._refused()
        if isinstance(stopped, SendRefused):
            # The send stops because of us: no row of this batch fails for a refusal.
            attempts = {item.delivery_id: item.attempts for item in batch}
            settled = [
                replace(row, status=DeliveryStatus.TRANSIENT, attempts=attempts[row.delivery_id])
                if row.delivery_id in self.refusals and row.status is DeliveryStatus.FAILED
                else row
                for row in settled
            ]
        if stopped is not None:
            await self._in_thread(self._settle, settled, bounced)
            raise stopped
        return settled, bounced

    def _refused(self) -> SendRefused | None:
        """The error that stops the send when the server refuses us rather than the
        recipients: past the refusal threshold, or unreachable through every retry."""
        where = f"backends.{self.backend.name}"
        if self.unreachable:
            return SendRefused(
                f"{self.unreachable} (tried {self.options.max_attempts} times). The send "
                f"stops; the unsent rows stay queued and nobody was marked failed: check "
                f"{where} and run again when the server answers."
            )
        if len(self.refusals) < self.refusal_limit:
            return None
        reason = self.refused_reasons.most_common(1)[0][0]
        return SendRefused(
            f"The server refused {len(self.refusals)} recipient(s) for a reason that says "
            f"nothing about their addresses ({reason}). The send stops; those rows stay "
            f"queued, no address was suppressed and no subscriber changed. Fix the cause "
            f"(relay permission, login, sender domain or content; see {where}), then run "
            "again to resume."
        )

    def _outcome(self, delivery: Delivery, item: Claimed, message_id: str) -> Settlement:
        """How the row of ``item`` ends this attempt. A sent row keeps the Message-ID it
        went out with (bounces and complaints quote it)."""
        attempts = item.attempts + 1
        if delivery.refused:
            refused = self._not_about_recipient(delivery, item)
            if refused is not None:
                return refused
        if delivery.status is DeliveryStatus.SENT:
            return Settlement(
                item.delivery_id,
                DeliveryStatus.SENT,
                attempts,
                provider_id=delivery.provider_id,
                message_id=message_id,
            )
        if delivery.status is DeliveryStatus.TRANSIENT and attempts < self.options.max_attempts:
            wait = timedelta(seconds=self._backoff(attempts))
            return Settlement(
                item.delivery_id,
                DeliveryStatus.TRANSIENT,
                attempts,
                delivery.error,
                not_before=utcnow() + wait,
            )
        self.reasons[_reason(delivery)] += 1
        return Settlement(
            item.delivery_id, DeliveryStatus.FAILED, attempts, delivery.error or "failed"
        )

    def _not_about_recipient(self, delivery: Delivery, item: Claimed) -> Settlement | None:
        """The row of a failure that says nothing about the recipient, back in the queue
        as it was (attempts unchanged); ``None`` when it fails like any other: a policy
        refusal of this one row ``max_attempts`` times while the send goes on."""
        if delivery.status is DeliveryStatus.TRANSIENT:
            if item.attempts + 1 < self.options.max_attempts:
                return None  # retried with backoff like any transient failure
            self.unreachable = self.unreachable or _reason(delivery)
            return Settlement(
                item.delivery_id, DeliveryStatus.TRANSIENT, item.attempts, delivery.error
            )
        self.refusals[item.delivery_id] += 1
        self.refused_reasons[_reason(delivery)] += 1
        if self.refusals[item.delivery_id] >= self.options.max_attempts:
            return None
        wait = timedelta(seconds=self._backoff(self.refusals[item.delivery_id]))
        return Settlement(
            item.delivery_id,
            DeliveryStatus.TRANSIENT,
            item.attempts,
            delivery.error,
            not_before=utcnow() + wait,
        )

    def _settle(self, rows: Sequence[Settlement], bounced: Sequence[tuple[str, str]] = ()) -> None:
        recorded = ledger.settle(
            self.store, rows, bounced, self.backend.type, worker=self.options.worker
        )
        self._settled(rows, recorded)


async def send_issue(
    store: Store,
    issue_id: int,
    factory: MessageSource,
    backend: Backend,
    *,
    options: SendOptions | None = None,
    progress: Callable[[SendProgress], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SendReport:
    """Send every ``queued`` delivery of the issue; mark the issue ``sent`` when none is left.

    ``backend`` must be open. Subscribers are checked when their batch is claimed.
    ``progress`` is called after each batch with the counts so far. ``SendAborted``
    propagates after this process's claims are freed. ``stop()`` is asked before each
    batch: when true the send ends there, the issue stays ``sending`` with its rest
    ``queued`` for a resume, and the report says ``interrupted``.
    """
    options = options or SendOptions()
    run = _Run(store, issue_id, factory, backend, options, progress, stop)
    freed = ledger.release_dead(store, issue_id, options.worker) if options.free_dead else 0
    if freed:
        log.info("resuming: %d row(s) claimed by a process that died are queued again", freed)
    # On a list shorter than the threshold, every row refused is enough to stop.
    left = ledger.count_queued(store, issue_id, at_most=run.refusal_limit)
    run.refusal_limit = max(1, min(run.refusal_limit, left))
    stopped = threading.Event()
    heartbeat = threading.Thread(target=run.heartbeat, args=(stopped,), daemon=True)
    heartbeat.start()
    try:
        if backend.connections == 1:
            # In this task: whatever stops the send (KeyboardInterrupt included) reaches
            # the caller as itself.
            await run.worker()
        else:
            async with asyncio.TaskGroup() as group:
                for _ in range(backend.connections):
                    group.create_task(run.worker())
    except BaseExceptionGroup as group_error:
        # A worker's DigestError (the backend cannot send) is the story; bugs keep theirs.
        first = group_error.exceptions[0]
        if isinstance(first, DigestError):
            raise first from None
        raise
    finally:
        await run.drain()
        stopped.set()
        heartbeat.join()
        # The rows this run still holds (claimed, not settled: an error or a stop cut
        # their batch short), found by key rather than by reading the issue's queue.
        with run.held_lock:
            held = sorted(run.held)
        ledger.release(store, issue_id, options.worker, held)
    if not run.interrupted:
        ledger.finish(store, issue_id)
    return SendReport(
        sent=run.outcomes[DeliveryStatus.SENT],
        failed=run.outcomes[DeliveryStatus.FAILED],
        skipped=run.outcomes[DeliveryStatus.SKIPPED],
        reasons=tuple(run.reasons.most_common()),
        in_flight_window=in_flight_window(backend, options),
        interrupted=run.interrupted,
    )
