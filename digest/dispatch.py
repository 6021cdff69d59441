"""Dispatch: sending an issue to a list with a ledger, so nothing is lost or sent twice.

The ledger is the ``deliveries`` table, one row per (issue, subscriber):
``queued`` rows are created in one transaction with the issue; each batch is sent and
its rows become ``sent`` (with the provider's id), ``failed`` (with the reason) or
``skipped`` (the subscriber left before their turn), committed batch by batch. A
restarted send picks up the ``queued`` rows and never touches the settled ones; only
the batch in flight when a process died can be sent twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, select, update
from sqlalchemy.orm import Session

from .backends import Backend
from .errors import SubscriberError
from .models import Delivery, DeliveryStatus, Message, Subscriber
from .personalize import MessageFactory
from .store import Store
from .store.tables import DeliveryRow, IssueRow, ListRow, SubscriberRow, utcnow
from .subscribers import blocked_subscribers, sendable_clause

MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class SendReport:
    """Outcome of one send: counts by outcome and the reasons of failures."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    reasons: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    interrupted: bool = False


def queue_deliveries(session: Session, issue: IssueRow, list_name: str) -> int:
    """Create a ``queued`` ledger row for every active subscriber of ``list_name`` who
    has none for ``issue`` yet; returns how many were created."""
    already = select(DeliveryRow.subscriber_id).where(DeliveryRow.issue_id == issue.id)
    rows = session.execute(
        select(SubscriberRow.id, SubscriberRow.email)
        .join(ListRow, ListRow.id == SubscriberRow.list_id)
        .where(
            ListRow.name == list_name,
            sendable_clause(),
            SubscriberRow.id.not_in(already),
        )
        .order_by(SubscriberRow.id)
    ).all()
    now = utcnow()
    session.add_all(
        DeliveryRow(
            issue_id=issue.id, subscriber_id=sid, email=email, status="queued", updated_at=now
        )
        for sid, email in rows
    )
    return len(rows)


def _next_batch(
    session: Session, issue_id: int, size: int
) -> list[tuple[DeliveryRow, SubscriberRow]]:
    return [
        (delivery, subscriber)
        for delivery, subscriber in session.execute(
            select(DeliveryRow, SubscriberRow)
            .join(SubscriberRow, SubscriberRow.id == DeliveryRow.subscriber_id)
            .where(and_(DeliveryRow.issue_id == issue_id, DeliveryRow.status == "queued"))
            .order_by(DeliveryRow.attempts, DeliveryRow.id)
            .limit(size)
        ).all()
    ]


def _settle(row: DeliveryRow, delivery: Delivery) -> str:
    row.attempts += 1
    row.updated_at = utcnow()
    if delivery.status is DeliveryStatus.SENT:
        row.status, row.provider_id, row.error = "sent", delivery.provider_id, ""
    elif delivery.status is DeliveryStatus.TRANSIENT and row.attempts < MAX_ATTEMPTS:
        row.error = delivery.error
    else:
        row.status, row.error = "failed", delivery.error or "failed"
    return row.status


async def send_issue(
    store: Store,
    issue_id: int,
    factory: MessageFactory,
    backend: Backend,
    *,
    batch_size: int = 100,
    progress: Callable[[int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SendReport:
    """Send every ``queued`` delivery of the issue; mark the issue ``sent`` when none is left.

    Subscribers are checked at send time: one who is no longer active is skipped.
    ``progress(n)`` is called after each batch with the number of rows settled.
    ``stop()`` is asked before each batch: when true the send ends there, the issue stays
    ``sending`` with its rest ``queued`` for a resume, and the report says ``interrupted``.
    """
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    retry_pause = 0.5
    interrupted = False
    while True:
        if stop is not None and stop():
            interrupted = True
            break
        with store.session() as session:
            batch = _next_batch(session, issue_id, batch_size)
            if not batch:
                break
            messages: list[Message] = []
            rows: dict[int, DeliveryRow] = {}
            blocked = blocked_subscribers(session, [subscriber for _, subscriber in batch])
            for row, subscriber in batch:
                if subscriber.id in blocked:
                    row.status, row.error, row.updated_at = (
                        "skipped",
                        blocked[subscriber.id],
                        utcnow(),
                    )
                    outcomes["skipped"] += 1
                    continue
                try:
                    message = factory.build(
                        Subscriber(id=subscriber.id, email=subscriber.email, name=subscriber.name)
                    )
                except SubscriberError as exc:
                    row.status, row.error, row.updated_at = "failed", str(exc), utcnow()
                    outcomes["failed"] += 1
                    reasons[str(exc)] += 1
                    continue
                messages.append(message)
                rows[message.subscriber_id] = row
            deliveries = await backend.send(messages) if messages else []
            requeued = 0
            for delivery in deliveries:
                status = _settle(rows[delivery.subscriber_id], delivery)
                if status == "queued":
                    requeued += 1
                    continue
                outcomes[status] += 1
                if status == "failed":
                    reasons[delivery.error] += 1
        if progress:
            progress(len(batch) - requeued)
        transient = requeued > 0
        if transient:
            await asyncio.sleep(retry_pause)
            retry_pause = min(retry_pause * 2, 30.0)
    if not interrupted:
        with store.session() as session:
            session.execute(
                update(IssueRow)
                .where(IssueRow.id == issue_id, IssueRow.status == "sending")
                .values(status="sent", sent_at=utcnow())
            )
    return SendReport(
        sent=outcomes["sent"],
        failed=outcomes["failed"],
        skipped=outcomes["skipped"],
        reasons=tuple(reasons.most_common()),
        interrupted=interrupted,
    )
