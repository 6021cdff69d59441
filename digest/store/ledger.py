"""The ledger: one ``deliveries`` row per (issue, subscriber), so nothing is lost or
sent twice (``digest.dispatch`` drives it).

Rows are created ``queued`` with the issue by one INSERT ... SELECT (no subscriber
is held in memory). A worker *claims* up to ``size`` of them (``claimed_by`` =
``host:pid`` and a ``lease_until``; one UPDATE ... RETURNING whose subquery is
``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL), sends them and *settles* each as
``sent``, ``failed``, ``skipped``, or ``queued`` again with a backoff
(``not_before``). While a batch is in flight its holder ``renew``s the lease (a
heartbeat), so a live holder's rows are never claimed again however slow the batch;
a holder that died stops renewing and its rows are free when the lease (a minute)
runs out, or at once for the next sender on its host. A settlement counts only for
rows the settling worker still holds, so no row is settled twice.

The claim reads the partial index ``ix_deliveries_queued`` (one issue's queued rows
in id order): its cost does not grow with the rows earlier issues left, and
``prune`` deletes settled rows of old issues, keeping their counts.

The per-batch statements are Core, built once and run on the session's connection:
they run for every batch of every send.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Integer,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..hosts import is_alive
from ..models import Subscriber
from ..subscribers import blocked_subscribers, sendable_clause, suppress
from . import Store, dialect
from .status import DeliveryStatus, IssueStatus
from .tables import (
    DeliveryCountRow,
    DeliveryRow,
    IssueRow,
    ListRow,
    SubscriberRow,
    UTCDateTime,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A ledger row a worker holds: whom to send to, and ``status``: ``active``, or why
    they must not be sent to now (their status, ``suppressed``, ``paused``)."""

    delivery_id: int
    attempts: int
    subscriber: Subscriber
    status: str

    @property
    def id(self) -> int:
        """The subscriber's id (what ``blocked_subscribers`` reads)."""
        return self.subscriber.id


@dataclass(frozen=True, slots=True)
class Settlement:
    """How one claimed row ends its turn. ``TRANSIENT`` puts it back in the queue until
    ``not_before``; ``SENT``, ``FAILED`` and ``SKIPPED`` settle it for good."""

    delivery_id: int
    status: DeliveryStatus
    attempts: int
    error: str = ""
    provider_id: str = ""
    not_before: datetime | None = None
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Pruned:
    """What ``prune`` removed: ledger rows of how many issues, and how many rows."""

    issues: int
    rows: int


@dataclass(frozen=True, slots=True)
class Queued:
    """The queued rows of an issue: how many, how many ``worker`` holds, and the
    earliest backoff among them (``None``: none waits)."""

    total: int
    held: int
    not_before: datetime | None


def queue(session: Session, issue_id: int, list_name: str) -> None:
    """Create a ``queued`` row for every subscriber of ``list_name`` who may be sent to
    and has none for the issue yet, in the database alone. (No count: psycopg reports
    none for this INSERT ... SELECT.)"""
    already = select(DeliveryRow.subscriber_id).where(DeliveryRow.issue_id == issue_id)
    chosen = (
        select(
            literal(issue_id),
            SubscriberRow.id,
            SubscriberRow.email,
            literal(DeliveryStatus.QUEUED.value),
            literal(""),
            literal(""),
            literal(0),
            literal(utcnow(), DeliveryRow.updated_at.type),
            literal(""),
        )
        .join(ListRow, ListRow.id == SubscriberRow.list_id)
        .where(ListRow.name == list_name, sendable_clause(), SubscriberRow.id.not_in(already))
        .order_by(SubscriberRow.id)
    )
    columns = ["issue_id", "subscriber_id", "email", "status", "provider_id", "error"]
    columns += ["attempts", "updated_at", "claimed_by"]
    session.execute(insert(DeliveryRow).from_select(columns, chosen))


def claim(session: Session, issue_id: int, worker: str, size: int, lease: float) -> list[Claimed]:
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
    connection = session.connection()
    # One write statement: on SQLite it takes the database's write lock before it reads
    # (several sender processes may share the file); on PostgreSQL the subquery locks
    # its rows, skipping those another claimant has locked, and the UPDATE finds them
    # by primary key (a second look by issue made the planner walk the issue's queue).
    ids = connection.execute(_claim(), params).scalars().all()
    if not ids:
        return []
    rows = connection.execute(_claimed(), {"ids": ids, "worker": worker}).all()
    claimed = [
        Claimed(did, attempts, Subscriber(id=sid, email=email, name=name), status)
        for did, attempts, sid, email, name, status in rows
    ]
    # Checked now, not when the issue was queued: unsubscribed, bounced, suppressed or
    # paused since then means skipped.
    blocked = blocked_subscribers(session, claimed)
    return [replace(item, status=blocked.get(item.id, "active")) for item in claimed]


def settle(
    store: Store,
    settled: Sequence[Settlement],
    bounced: Sequence[tuple[str, str]] = (),
    source: str = "",
    *,
    worker: str,
) -> list[Settlement]:
    """Record how the rows ``settled`` ended their turn, releasing their claims; each
    ``(address, reason)`` of ``bounced`` (a hard bounce at send time through the
    backend ``source``) is suppressed for good. Only rows ``worker`` still holds are
    recorded: they are returned (a row another worker took over after this one's lease
    ran out belongs to that worker)."""
    with store.session() as session:
        return _record(session, settled, bounced, source, worker)


def settle_and_claim(
    store: Store,
    issue_id: int,
    worker: str,
    size: int,
    lease: float,
    settled: Sequence[Settlement] = (),
    bounced: Sequence[tuple[str, str]] = (),
    source: str = "",
) -> tuple[list[Settlement], list[Claimed]]:
    """A worker's turn in one transaction: ``settle`` its last batch, then ``claim`` the
    next; the rows recorded and the rows claimed."""
    with store.session() as session:
        recorded = _record(session, settled, bounced, source, worker)
        return recorded, claim(session, issue_id, worker, size, lease)


def renew(store: Store, worker: str, ids: Sequence[int], lease: float) -> int:
    """Extend ``worker``'s lease on the rows ``ids`` it still holds to ``lease`` seconds
    from now (the heartbeat of batches in flight); returns how many it still holds."""
    if not ids:
        return 0
    with store.session() as session:
        result = session.connection().execute(
            _renew(),
            {"ids": list(ids), "worker": worker, "lease_end": utcnow() + timedelta(seconds=lease)},
        )
        return int(result.rowcount or 0)


def _record(
    session: Session,
    settled: Sequence[Settlement],
    bounced: Sequence[tuple[str, str]],
    source: str,
    worker: str,
) -> list[Settlement]:
    if not settled:
        held: set[int] = set()
    else:
        held = set(
            session.connection()
            .execute(_held(), {"ids": [item.delivery_id for item in settled], "worker": worker})
            .scalars()
        )
    recorded = [item for item in settled if item.delivery_id in held]
    lost = len(settled) - len(recorded)
    if lost:
        log.warning(
            "%d row(s) were taken over by another worker before %s settled them", lost, worker
        )
    now = utcnow()
    # Grouped by key set, one Core executemany per group (the ORM's bulk update by
    # primary key costs several times more per row).
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for item in recorded:
        values: dict[str, Any] = {
            "row_id": item.delivery_id,
            "status": item.status.value,
            "error": item.error,
            "attempts": item.attempts,
            "claimed_by": "",
            "lease_until": None,
            "updated_at": now,
        }
        if item.status is DeliveryStatus.SENT:
            values["provider_id"] = item.provider_id[:500]
            values["message_id"] = item.message_id[:250]
        elif item.status is DeliveryStatus.TRANSIENT:
            values.update(status=DeliveryStatus.QUEUED.value, not_before=item.not_before)
        groups.setdefault(tuple(sorted(values)), []).append(values)
    if groups:
        connection = session.connection()
        for keys, group in groups.items():
            connection.execute(_settle(keys), group)
    for address, reason in bounced:
        suppress(session, address, "hard-bounce", f"send:{source}", reason)
        log.info("%s suppressed: %s", address, reason)
    return recorded


def queued(store: Store, issue_id: int, worker: str) -> Queued:
    """The queued rows of the issue as ``worker`` sees them."""
    with store.session() as session:
        total, held, not_before = session.execute(
            select(
                func.count(DeliveryRow.id),
                func.count(DeliveryRow.id).filter(DeliveryRow.claimed_by == worker),
                func.min(DeliveryRow.not_before),
            ).where(DeliveryRow.issue_id == issue_id, _QUEUED)
        ).one()
    if isinstance(not_before, str):  # SQLite aggregates lose the column type
        not_before = datetime.fromisoformat(not_before).replace(tzinfo=UTC)
    return Queued(total, held, not_before)


def release_dead(store: Store, issue_id: int, worker: str) -> int:
    """Free the claims on the issue of processes on ``worker``'s host that no longer run;
    returns how many rows."""
    host = worker.rpartition(":")[0]
    with store.session() as session:
        holders = session.scalars(
            select(DeliveryRow.claimed_by)
            .where(
                DeliveryRow.issue_id == issue_id,
                _QUEUED,
                DeliveryRow.claimed_by.like(f"{host}:%"),
            )
            .distinct()
        ).all()
        dead = [holder for holder in holders if holder != worker and is_alive(holder) is False]
        if not dead:
            return 0
        return _release(session, issue_id, dead)


def release(store: Store, issue_id: int, worker: str, ids: Sequence[int] | None = None) -> int:
    """Free ``worker``'s claims on the issue (the rows stay queued); returns how many.

    With ``ids`` (the rows the caller knows it holds), only those are looked at, by
    primary key; without, the issue's whole queue is read for ``worker``'s rows, which
    costs a read of every queued row on a large issue."""
    if ids is not None and not ids:
        return 0
    with store.session() as session:
        if ids is None:
            return _release(session, issue_id, [worker])
        connection = session.connection()
        freed = 0
        for chunk in dialect.chunks(ids):
            result = connection.execute(_unclaim(), {"ids": chunk, "worker": worker})
            freed += int(result.rowcount or 0)
        return freed


def _release(session: Session, issue_id: int, holders: Sequence[str]) -> int:
    result = session.connection().execute(
        update(DeliveryRow)
        .where(
            DeliveryRow.issue_id == issue_id,
            _QUEUED,
            DeliveryRow.claimed_by.in_(holders),
        )
        .values(claimed_by="", lease_until=None)
    )
    return int(result.rowcount or 0)


def counts(store: Store, issue_id: int) -> dict[str, int]:
    """The issue's ledger rows by status (``queued`` for those not settled yet)."""
    with store.session() as session:
        return dict(
            session.execute(
                select(DeliveryRow.status, func.count(DeliveryRow.id))
                .where(DeliveryRow.issue_id == issue_id)
                .group_by(DeliveryRow.status)
            )
            .tuples()
            .all()
        )


def count_queued(store: Store, issue_id: int, at_most: int | None = None) -> int:
    """How many rows of the issue are still queued, counting no further than
    ``at_most`` when given (a count that stops early reads only that many rows)."""
    with store.session() as session:
        return _count_queued(session, issue_id, at_most)


def _count_queued(session: Session, issue_id: int, at_most: int | None = None) -> int:
    rows = select(DeliveryRow.id).where(DeliveryRow.issue_id == issue_id, _QUEUED)
    if at_most is not None:
        rows = rows.limit(at_most)
    return session.scalar(select(func.count()).select_from(rows.subquery())) or 0


def finish(store: Store, issue_id: int) -> bool:
    """Mark the issue ``sent`` if none of its rows is queued any more; returns whether
    none is."""
    with store.session() as session:
        # One row is enough to know (every worker task of a large issue asks this).
        if _count_queued(session, issue_id, at_most=1):
            return False
        session.execute(
            update(IssueRow)
            .where(IssueRow.id == issue_id, IssueRow.status == IssueStatus.SENDING)
            .values(status=IssueStatus.SENT.value, sent_at=utcnow())
        )
        return True


def prune(store: Store, older_than: timedelta) -> Pruned:
    """Delete the ledger rows of finished issues sent more than ``older_than`` ago,
    adding their count per status to ``delivery_counts`` first (``history`` keeps
    counting them), one issue per transaction. Unfinished issues keep every row, and
    nothing a subscriber's status, suppression or tokens depend on lives in these rows;
    bounces and complaints arrive within days of a send, long before a prune."""
    cutoff = utcnow() - older_than
    with store.session() as session:
        old = session.scalars(
            select(IssueRow.id).where(
                IssueRow.status == IssueStatus.SENT, IssueRow.sent_at < cutoff
            )
        ).all()
    pruned = Pruned(0, 0)
    for issue_id in old:
        with store.session() as session:
            counts = session.execute(
                select(DeliveryRow.status, func.count(DeliveryRow.id))
                .where(DeliveryRow.issue_id == issue_id)
                .group_by(DeliveryRow.status)
            ).all()
            if not counts:
                continue
            for status, n in counts:
                statement = dialect.insert(session, DeliveryCountRow).values(
                    issue_id=issue_id, status=status, count=n
                )
                session.execute(
                    statement.on_conflict_do_update(
                        index_elements=["issue_id", "status"],
                        set_={"count": DeliveryCountRow.count + statement.excluded.count},
                    )
                )
            session.execute(delete(DeliveryRow).where(DeliveryRow.issue_id == issue_id))
            pruned = Pruned(pruned.issues + 1, pruned.rows + sum(n for _, n in counts))
    return pruned


_DELIVERIES = cast(Table, DeliveryRow.__table__)
_NOW = bindparam("now", type_=UTCDateTime())
_FREE = or_(_DELIVERIES.c.lease_until.is_(None), _DELIVERIES.c.lease_until < _NOW)
# A literal, not a bound parameter: only then may either database use the partial index
# ``ix_deliveries_queued`` (a prepared statement's generic plan cannot prove a
# parameter equals the index's predicate). Every query on an issue's queued rows uses
# it, so none of them reads the settled rows of other issues, statistics or not.
_QUEUED = _DELIVERIES.c.status == literal_column("'queued'")
# Rows found by primary key that ``worker`` holds. No status test: only queued rows are
# ever held (every settlement clears ``claimed_by``), and a ``status = 'queued'`` here
# let PostgreSQL AND the primary key with a bitmap of the whole partial index, every
# issue's queued entries and the dead ones settled rows leave until a vacuum: 20 ms a
# batch after 300,000 settled rows, growing with history.
_HOLDS = _DELIVERIES.c.claimed_by == bindparam("worker")


@functools.cache
def _claimable() -> Select[int]:
    """The ids of up to ``size`` claimable rows of the issue ``issue`` at ``now``."""
    d = _DELIVERIES.c
    return (
        select(d.id)
        .where(
            d.issue_id == bindparam("issue"),
            _QUEUED,
            _FREE,
            or_(d.not_before.is_(None), d.not_before <= _NOW),
        )
        .order_by(d.id)
        .limit(bindparam("size", type_=Integer()))
    )


@functools.cache
def _claim() -> Update:
    return (
        update(_DELIVERIES)
        .where(
            _DELIVERIES.c.id.in_(_claimable().with_for_update(skip_locked=True).scalar_subquery())
        )
        .values(
            claimed_by=bindparam("worker"), lease_until=bindparam("lease_end", type_=UTCDateTime())
        )
        .returning(_DELIVERIES.c.id)
    )


@functools.cache
def _claimed() -> Select[int, int, int, str, str, str]:
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
def _held() -> Update:
    """Which of the rows ``ids`` the worker ``worker`` holds. A write that changes
    nothing, so that it locks them (PostgreSQL) or takes the database's write lock
    before reading (SQLite, where a read before the first write could meet another
    writer's commit): nobody takes them over before they are settled."""
    d = _DELIVERIES.c
    return (
        update(_DELIVERIES)
        .where(d.id.in_(bindparam("ids", expanding=True)), _HOLDS)
        .values(claimed_by=d.claimed_by)
        .returning(d.id)
    )


@functools.cache
def _unclaim() -> Update:
    d = _DELIVERIES.c
    return (
        update(_DELIVERIES)
        .where(d.id.in_(bindparam("ids", expanding=True)), _HOLDS)
        .values(claimed_by="", lease_until=None)
    )


@functools.cache
def _renew() -> Update:
    d = _DELIVERIES.c
    return (
        update(_DELIVERIES)
        .where(d.id.in_(bindparam("ids", expanding=True)), _HOLDS)
        .values(lease_until=bindparam("lease_end", type_=UTCDateTime()))
    )


@functools.cache
def _settle(keys: tuple[str, ...]) -> Update:
    """An UPDATE of the ledger row ``row_id`` setting the columns ``keys`` (but ``row_id``)."""
    return (
        update(_DELIVERIES)
        .where(_DELIVERIES.c.id == bindparam("row_id"))
        .values({key: bindparam(key) for key in keys if key != "row_id"})
    )


def requeue_failed(store: Store, newsletter: str) -> tuple[int, int] | None:
    """Queue again the ``failed`` rows of the last issue of ``newsletter`` whose
    subscriber may still be sent to (a hard bounce or an unsubscription since stays as
    it is), with their attempts reset, and mark the issue ``sending`` again when any
    was: ``digest retry`` after the operator fixed what made them fail. Returns (the
    issue's number, how many rows), or ``None`` when the newsletter has no issue."""
    with store.session() as session:
        issue = session.scalar(
            select(IssueRow)
            .where(IssueRow.newsletter == newsletter)
            .order_by(IssueRow.number.desc())
            .limit(1)
        )
        if issue is None:
            return None
        sendable = select(SubscriberRow.id).where(sendable_clause())
        result = session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.issue_id == issue.id,
                DeliveryRow.status == DeliveryStatus.FAILED,
                DeliveryRow.subscriber_id.in_(sendable),
            )
            .values(
                status=DeliveryStatus.QUEUED.value,
                attempts=0,
                error="",
                not_before=None,
                claimed_by="",
                lease_until=None,
                updated_at=utcnow(),
            )
        )
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            issue.status = IssueStatus.SENDING.value
        return issue.number, count
