"""Dispatch: sending an issue to a list with a ledger, so nothing is lost or sent twice.

The ledger is the ``deliveries`` table, one row per (issue, subscriber), created
``queued`` with the issue by one INSERT ... SELECT (no subscriber is held in memory).
The unit of work is a batch: a worker *claims* up to ``batch_size`` queued rows
(``claimed_by`` = ``host:pid``, a ``lease_until``; ``SELECT ... FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so workers on several machines sharing one database never
take the same rows), builds the messages, sends them through the backend and
settles every row of the batch in one transaction:

- ``sent`` with the provider's id;
- ``failed`` with the reason (a permanent refusal, or ``max_attempts`` transient
  ones); a hard bounce also sets the subscriber's status to ``bounced``;
- ``skipped``: the subscriber is no longer active when their turn comes;
- still ``queued`` after a transient failure, with ``not_before`` set by
  exponential backoff with jitter.

``backend.connections`` workers run at once, so at most ``connections x batch_size``
messages are in flight: a process killed between the server accepting a message and
the ledger commit can send at most that many twice (``in_flight_window``). A run
started again (``run NAME``) first frees the claims of dead processes on this host,
then carries on with what is still queued; claims of other hosts expire with their
lease. Ctrl-C and ``SendAborted`` (wrong credentials, TLS failure) free this
process's claims: those rows stay queued and nothing is marked that did not happen.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from .backends import Backend
from .errors import DigestError, NothingWanted, SendAborted, SubscriberError
from .models import Delivery, DeliveryStatus, Message, Subscriber
from .personalize import MessageFactory
from .store import Store
from .store.tables import DeliveryRow, IssueRow, ListRow, SubscriberRow, UTCDateTime, utcnow
from .subscribers import blocked_subscribers, record_bounce, sendable_clause

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


def worker_id() -> str:
    """This process as a ledger claimant: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How dispatch paces itself. ``batch_size`` None: the backend's ``dispatch_batch``."""

    batch_size: int | None = None
    max_attempts: int = MAX_ATTEMPTS
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    lease: float = 600.0
    worker: str = field(default_factory=worker_id)


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


def queue_deliveries(session: Session, issue: IssueRow, list_name: str) -> int:
    """Create a ``queued`` ledger row for every active subscriber of ``list_name`` who
    has none for ``issue`` yet, in the database alone; returns how many were created."""
    already = select(DeliveryRow.subscriber_id).where(DeliveryRow.issue_id == issue.id)
    now = utcnow()
    chosen = (
        select(
            literal(issue.id),
            SubscriberRow.id,
            SubscriberRow.email,
            literal("queued"),
            literal(""),
            literal(""),
            literal(0),
            literal(now, DeliveryRow.updated_at.type),
            literal(""),
        )
        .join(ListRow, ListRow.id == SubscriberRow.list_id)
        .where(
            ListRow.name == list_name,
            sendable_clause(),
            SubscriberRow.id.not_in(already),
        )
        .order_by(SubscriberRow.id)
    )
    result = session.execute(
        insert(DeliveryRow).from_select(
            [
                "issue_id",
                "subscriber_id",
                "email",
                "status",
                "provider_id",
                "error",
                "attempts",
                "updated_at",
                "claimed_by",
            ],
            chosen,
        )
    )
    return int(result.rowcount or 0)


def suppress(session: Session, address: str, reason: str, backend: str) -> None:
    """A hard bounce at send time: the address goes on the global suppression list and
    its subscribers become ``bounced``, so it never gets mail again."""
    record_bounce(session, address, "hard", f"send:{backend}", reason)
    log.info("%s suppressed: %s", address, reason)


def release_dead_claims(session: Session, issue_id: int, worker: str) -> int:
    """Free the claims of processes on this host that no longer run; returns how many rows."""
    host = worker.rpartition(":")[0]
    holders = session.scalars(
        select(DeliveryRow.claimed_by)
        .where(
            DeliveryRow.issue_id == issue_id,
            DeliveryRow.status == "queued",
            DeliveryRow.claimed_by.like(f"{host}:%"),
        )
        .distinct()
    ).all()
    dead = [holder for holder in holders if holder != worker and not _alive(holder)]
    if not dead:
        return 0
    result = session.execute(
        update(DeliveryRow)
        .where(
            DeliveryRow.issue_id == issue_id,
            DeliveryRow.status == "queued",
            DeliveryRow.claimed_by.in_(dead),
        )
        .values(claimed_by="", lease_until=None)
    )
    return int(result.rowcount or 0)


def _alive(holder: str) -> bool:
    try:
        os.kill(int(holder.rpartition(":")[2]), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return True


_Outcomes = tuple[list[dict[str, Any]], list[tuple[str, str]]]


@dataclass(slots=True)
class _Claimed:
    delivery_id: int
    attempts: int
    subscriber: Subscriber
    status: str  # the subscriber's, or why they must not be sent to now

    @property
    def id(self) -> int:
        return self.subscriber.id


def claim(session: Session, issue_id: int, worker: str, size: int, lease: float) -> list[_Claimed]:
    """Claim up to ``size`` queued rows of the issue that nobody holds and whose backoff
    is over; on PostgreSQL rows locked by another worker's claim are skipped."""
    now = utcnow()
    params = {
        "issue": issue_id,
        "now": now,
        "size": size,
        "worker": worker,
        "lease_end": now + timedelta(seconds=lease),
    }
    # Core statements built once, on the session's connection: this runs per batch.
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # SQLite has no row locks: the claim must be one write statement, so that the
        # transaction takes the database's write lock before it reads (several sender
        # processes may share the file).
        ids = connection.execute(_claim_sqlite(), params).scalars().all()
    else:
        ids = (
            connection.execute(_claimable().with_for_update(skip_locked=True), params)
            .scalars()
            .all()
        )
        if not ids:
            return []
        # The same conditions again: a claimant that got in between keeps its rows.
        connection.execute(_take(), {**params, "ids": ids})
    if not ids:
        return []
    rows = connection.execute(_claimed(), {"ids": ids, "worker": worker}).all()
    claimed = [
        _Claimed(did, attempts, Subscriber(id=sid, email=email, name=name), status)
        for did, attempts, sid, email, name, status in rows
    ]
    # Checked now, not when the issue was queued: unsubscribed, bounced, suppressed or
    # paused since then means skipped.
    blocked = blocked_subscribers(session, claimed)  # type: ignore[arg-type]
    for item in claimed:
        item.status = blocked.get(item.id, "active")
    return claimed


_DELIVERIES = DeliveryRow.__table__
_NOW = bindparam("now", type_=UTCDateTime())
_FREE = or_(_DELIVERIES.c.lease_until.is_(None), _DELIVERIES.c.lease_until < _NOW)


@functools.cache
def _claimable() -> Select[tuple[int]]:
    """The ids of up to ``size`` claimable rows of the issue ``issue`` at ``now``."""
    d = _DELIVERIES.c
    return (
        select(d.id)
        .where(
            d.issue_id == bindparam("issue"),
            d.status == "queued",
            _FREE,
            or_(d.not_before.is_(None), d.not_before <= _NOW),
        )
        .order_by(d.id)
        .limit(bindparam("size", type_=Integer()))
    )


@functools.cache
def _claim_sqlite() -> Update:
    return (
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id.in_(_claimable().scalar_subquery()))
        .values(
            claimed_by=bindparam("worker"), lease_until=bindparam("lease_end", type_=UTCDateTime())
        )
        .returning(_DELIVERIES.c.id)
    )


@functools.cache
def _take() -> Update:
    d = _DELIVERIES.c
    return (
        update(_DELIVERIES)
        .where(d.id.in_(bindparam("ids", expanding=True)), d.status == "queued", _FREE)
        .values(
            claimed_by=bindparam("worker"), lease_until=bindparam("lease_end", type_=UTCDateTime())
        )
    )


@functools.cache
def _claimed() -> Select[tuple[int, int, int, str, str, str]]:
    d = _DELIVERIES.c
    return (
        select(
            d.id,
            d.attempts,
            SubscriberRow.id,
            SubscriberRow.email,
            SubscriberRow.name,
            SubscriberRow.status,
        )
        .join(SubscriberRow, SubscriberRow.id == d.subscriber_id)
        .where(d.id.in_(bindparam("ids", expanding=True)), d.claimed_by == bindparam("worker"))
        .order_by(d.id)
    )


@functools.cache
def _settle(keys: tuple[str, ...]) -> Update:
    """An UPDATE of the ledger row ``row_id`` setting the columns ``keys`` (but ``id``)."""
    return (
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == bindparam("row_id"))
        .values({key: bindparam(key) for key in keys if key != "id"})
    )


def _reason(delivery: Delivery) -> str:
    # Group reasons without the address, so the report counts kinds of failure.
    return (delivery.error or "failed").replace(delivery.recipient, "<recipient>")


class _Run:
    """One call of ``send_issue``: shared counters and the workers' loop."""

    def __init__(
        self,
        store: Store,
        issue_id: int,
        factory: MessageFactory,
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
        self.outcomes: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.claiming = asyncio.Lock()
        self.stop = stop
        self.interrupted = False

    def _report_progress(self) -> None:
        if self.progress:
            self.progress(
                SendProgress(
                    sent=self.outcomes["sent"],
                    failed=self.outcomes["failed"],
                    skipped=self.outcomes["skipped"],
                    retrying=self.outcomes["retrying"],
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
                await asyncio.to_thread(self._settle, *settled)
                return
            # One transaction records the last batch and claims the next, and it runs in
            # a thread so the other connections keep sending while SQLite commits.
            async with self.claiming:  # one claim at a time per process
                batch = await asyncio.to_thread(self._settle_and_claim, *settled)
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
        self, rows: list[dict[str, Any]], bounced: Sequence[tuple[str, str]]
    ) -> list[_Claimed]:
        with self.store.session() as session:
            self._record(session, rows, bounced)
            return claim(session, self.issue_id, self.options.worker, self.size, self.options.lease)

    def _next_wait(self) -> float | None:
        """None when no queued row is left for this worker; else how long until one may
        be claimable.

        Rows this process's other workers are sending do not count: those workers
        carry on with whatever comes back for a retry, so an idle worker ends instead
        of polling until the last batch is settled.
        """
        with self.store.session() as session:
            count, in_flight, not_before = session.execute(
                select(
                    func.count(DeliveryRow.id),
                    func.count(DeliveryRow.id).filter(
                        DeliveryRow.claimed_by == self.options.worker
                    ),
                    func.min(DeliveryRow.not_before),
                ).where(DeliveryRow.issue_id == self.issue_id, DeliveryRow.status == "queued")
            ).one()
        if count == in_flight:
            return None
        if not_before is not None:
            if isinstance(not_before, str):  # SQLite aggregates lose the column type
                return 0.5
            return min(5.0, max(0.05, (not_before - utcnow()).total_seconds()))
        return 0.5

    async def _send_batch(self, batch: Sequence[_Claimed]) -> _Outcomes:
        """Send one claimed batch; the rows to record (and the bounces), recorded by the
        caller with its next claim. What raises records its own rows first."""
        settled: list[dict[str, Any]] = []
        now = utcnow()
        messages: list[Message] = []
        by_subscriber: dict[int, _Claimed] = {}
        for item in batch:
            base = {
                "id": item.delivery_id,
                "claimed_by": "",
                "lease_until": None,
                "updated_at": now,
            }
            unsent: tuple[str, str] | None = None  # (status, reason) when nothing goes out
            if item.status != "active":
                unsent = ("skipped", item.status)
            else:
                try:
                    message = self.factory.build(item.subscriber)
                except NothingWanted:
                    unsent = ("skipped", "no chosen section")
                except SubscriberError as exc:
                    unsent = ("failed", str(exc))
                    self.reasons["unusable address"] += 1
            if unsent is not None:
                status, error = unsent
                settled.append(
                    {**base, "status": status, "error": error, "attempts": item.attempts}
                )
                self.outcomes[status] += 1
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
            await asyncio.to_thread(self._settle, settled)
            raise
        bounced: list[tuple[str, str]] = []
        message_ids = {m.subscriber_id: m.message_id for m in messages}
        for delivery in deliveries:
            item = by_subscriber[delivery.subscriber_id]
            attempts = item.attempts + 1
            row = {
                "id": item.delivery_id,
                "claimed_by": "",
                "lease_until": None,
                "updated_at": now,
                "attempts": attempts,
            }
            if delivery.status is DeliveryStatus.SENT:
                row.update(
                    status="sent",
                    provider_id=delivery.provider_id[:500],
                    message_id=message_ids[delivery.subscriber_id],
                    error="",
                )
                self.outcomes["sent"] += 1
            elif (
                delivery.status is DeliveryStatus.TRANSIENT and attempts < self.options.max_attempts
            ):
                row.update(
                    status="queued",
                    error=delivery.error,
                    not_before=now + timedelta(seconds=self._backoff(attempts)),
                )
                self.outcomes["retrying"] += 1
            else:
                row.update(status="failed", error=delivery.error or "failed")
                self.outcomes["failed"] += 1
                self.reasons[_reason(delivery)] += 1
                if delivery.bounced:
                    bounced.append((delivery.recipient, delivery.error))
            settled.append(row)
        if aborted is not None:
            await asyncio.to_thread(self._settle, settled, bounced)
            raise aborted
        return settled, bounced

    def _settle(self, rows: list[dict[str, Any]], bounced: Sequence[tuple[str, str]] = ()) -> None:
        with self.store.session() as session:
            self._record(session, rows, bounced)

    def _record(
        self, session: Session, rows: list[dict[str, Any]], bounced: Sequence[tuple[str, str]]
    ) -> None:
        # Grouped by key set, one Core executemany per group (the ORM's bulk update by
        # primary key costs several times more per row).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        if groups:
            connection = session.connection()
            for keys, group in groups.items():
                connection.execute(_settle(keys), [{**row, "row_id": row["id"]} for row in group])
        for address, reason in bounced:
            suppress(session, address, reason, self.backend.type)

    def release_own_claims(self) -> None:
        with self.store.session() as session:
            session.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.issue_id == self.issue_id,
                    DeliveryRow.status == "queued",
                    DeliveryRow.claimed_by == self.options.worker,
                )
                .values(claimed_by="", lease_until=None)
            )


async def send_issue(
    store: Store,
    issue_id: int,
    factory: MessageFactory,
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
    with store.session() as session:
        freed = release_dead_claims(session, issue_id, options.worker)
    if freed:
        log.info("resuming: %d row(s) claimed by a process that died are queued again", freed)
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
        run.release_own_claims()
    with store.session() as session:
        left = session.scalar(
            select(func.count(DeliveryRow.id)).where(
                and_(DeliveryRow.issue_id == issue_id, DeliveryRow.status == "queued")
            )
        )
        if not left and not run.interrupted:
            session.execute(
                update(IssueRow)
                .where(IssueRow.id == issue_id, IssueRow.status == "sending")
                .values(status="sent", sent_at=utcnow())
            )
    return SendReport(
        sent=run.outcomes["sent"],
        failed=run.outcomes["failed"],
        skipped=run.outcomes["skipped"],
        reasons=tuple(run.reasons.most_common()),
        in_flight_window=in_flight_window(backend, options),
        interrupted=run.interrupted,
    )
