"""What the store keeps about scheduled runs (``schedule_runs``), and the history
that ``digest schedules`` and ``digest history`` show.

A slot is a (newsletter, scheduled moment in UTC) pair. ``claim_slot`` inserts its
``running`` row under the unique (newsletter, slot) constraint, in a transaction of
its own: of two daemons sharing one database, the second one's insert fails, so a
slot runs at most once. Each function opens its own short transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from . import Store
from .status import RunStatus
from .tables import (
    DeliveryCountRow,
    DeliveryRow,
    IssueItemRow,
    IssueRow,
    ScheduleRunRow,
    apscheduler_jobs,
    utcnow,
)

#: APScheduler's table (declared in ``tables`` so that the migrations create it).
JOBSTORE_TABLE = apscheduler_jobs.name


@dataclass(frozen=True, slots=True)
class Unfinished:
    """A slot left ``running`` or ``interrupted``; ``heartbeat_at`` is the last sign of
    life of its owner (its start when it never beat)."""

    newsletter: str
    slot: datetime
    status: RunStatus
    owner: str
    heartbeat_at: datetime


@dataclass(frozen=True, slots=True)
class RunSummary:
    """How a slot ended (or that it is still running)."""

    slot: datetime
    status: RunStatus
    message: str
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssueSummary:
    """One issue of a newsletter with its item and delivery counts (by delivery status)."""

    number: int
    issue_date: str
    status: str
    subject: str
    created_at: datetime
    sent_at: datetime | None
    items: int
    deliveries: dict[str, int]


def job_store(store: Store) -> SQLAlchemyJobStore:
    """APScheduler's job store in ``store``'s database (table ``JOBSTORE_TABLE``)."""
    return SQLAlchemyJobStore(engine=store.engine, tablename=JOBSTORE_TABLE)


def _insert(store: Store, row: ScheduleRunRow) -> bool:
    """Insert ``row`` in a transaction of its own; False when its slot already has one."""
    try:
        with store.session() as session:
            session.add(row)
    except IntegrityError:
        return False
    return True


def claim_slot(store: Store, name: str, slot: datetime, owner: str) -> bool:
    """Insert the ``running`` row of (``name``, ``slot``); False when it already exists,
    i.e. another process (or an earlier run) has the slot."""
    now = utcnow()
    return _insert(
        store,
        ScheduleRunRow(
            newsletter=name,
            slot=slot,
            status=RunStatus.RUNNING,
            owner=owner,
            started_at=now,
            heartbeat_at=now,
        ),
    )


def reclaim_slot(
    store: Store, name: str, slot: datetime, owner: str, previous_owner: str = ""
) -> bool:
    """Take over an ``interrupted`` slot (or one still ``running`` under the dead
    ``previous_owner``) for a resume, atomically; False when someone else did."""
    taken_from = ScheduleRunRow.status == RunStatus.INTERRUPTED
    if previous_owner:
        taken_from = or_(
            taken_from,
            and_(
                ScheduleRunRow.status == RunStatus.RUNNING, ScheduleRunRow.owner == previous_owner
            ),
        )
    with store.session() as session:
        result = session.execute(
            update(ScheduleRunRow)
            .where(ScheduleRunRow.newsletter == name, ScheduleRunRow.slot == slot, taken_from)
            .values(status=RunStatus.RUNNING, owner=owner, finished_at=None, heartbeat_at=utcnow())
        )
        # Session.execute is typed as returning Result; an UPDATE gives a CursorResult.
        return result.rowcount == 1  # type: ignore[attr-defined]


def beat_slot(store: Store, name: str, slot: datetime, owner: str) -> None:
    """Refresh the heartbeat of the slot ``owner`` is running."""
    with store.session() as session:
        session.execute(
            update(ScheduleRunRow)
            .where(
                ScheduleRunRow.newsletter == name,
                ScheduleRunRow.slot == slot,
                ScheduleRunRow.owner == owner,
                ScheduleRunRow.status == RunStatus.RUNNING,
            )
            .values(heartbeat_at=utcnow())
        )


def finish_slot(
    store: Store, name: str, slot: datetime, status: RunStatus, message: str, number: int | None
) -> None:
    """Record how the slot ended."""
    with store.session() as session:
        session.execute(
            update(ScheduleRunRow)
            .where(ScheduleRunRow.newsletter == name, ScheduleRunRow.slot == slot)
            .values(status=status, message=message, issue_number=number, finished_at=utcnow())
        )


def record_missed(store: Store, name: str, slot: datetime, message: str) -> None:
    """Record a slot skipped for being too late (nothing if it is already recorded)."""
    now = utcnow()
    _insert(
        store,
        ScheduleRunRow(
            newsletter=name,
            slot=slot,
            status=RunStatus.MISSED,
            message=message,
            started_at=now,
            finished_at=now,
        ),
    )


def unfinished(store: Store) -> list[Unfinished]:
    """Every slot left ``interrupted`` or ``running`` (by this or any process)."""
    with store.session() as session:
        rows = session.execute(
            select(
                ScheduleRunRow.newsletter,
                ScheduleRunRow.slot,
                ScheduleRunRow.status,
                ScheduleRunRow.owner,
                func.coalesce(ScheduleRunRow.heartbeat_at, ScheduleRunRow.started_at),
            ).where(ScheduleRunRow.status.in_((RunStatus.INTERRUPTED, RunStatus.RUNNING)))
        ).all()
    return [
        Unfinished(name, slot, RunStatus(status), owner, beat)
        for name, slot, status, owner, beat in rows
    ]


def last_run(store: Store, name: str) -> RunSummary | None:
    """The latest slot of newsletter ``name``."""
    with store.session() as session:
        run = session.scalar(
            select(ScheduleRunRow)
            .where(ScheduleRunRow.newsletter == name)
            .order_by(ScheduleRunRow.slot.desc())
            .limit(1)
        )
        if run is None:
            return None
        return RunSummary(run.slot, RunStatus(run.status), run.message, run.finished_at)


def issue_history(store: Store, name: str, *, limit: int | None = None) -> list[IssueSummary]:
    """The issues of newsletter ``name``, newest first (at most ``limit``), with their
    item and delivery counts."""
    items = (
        select(func.count(IssueItemRow.id))
        .where(IssueItemRow.issue_id == IssueRow.id)
        .scalar_subquery()
    )
    with store.session() as session:
        issues = session.execute(
            select(IssueRow, items)
            .where(IssueRow.newsletter == name)
            .order_by(IssueRow.number.desc())
            .limit(limit)
        ).all()
        counts: dict[int, dict[str, int]] = {issue.id: {} for issue, _ in issues}
        if counts:
            for issue_id, status, n in session.execute(
                select(DeliveryRow.issue_id, DeliveryRow.status, func.count(DeliveryRow.id))
                .where(DeliveryRow.issue_id.in_(list(counts)))
                .group_by(DeliveryRow.issue_id, DeliveryRow.status)
            ):
                counts[issue_id][status] = n
            # Rows ``digest ledger prune`` deleted, counted before they went.
            for issue_id, status, n in session.execute(
                select(
                    DeliveryCountRow.issue_id, DeliveryCountRow.status, DeliveryCountRow.count
                ).where(DeliveryCountRow.issue_id.in_(list(counts)))
            ):
                counts[issue_id][status] = counts[issue_id].get(status, 0) + n
        return [
            IssueSummary(
                number=issue.number,
                issue_date=issue.issue_date,
                status=issue.status,
                subject=issue.subject,
                created_at=issue.created_at,
                sent_at=issue.sent_at,
                items=n_items or 0,
                deliveries=counts[issue.id],
            )
            for issue, n_items in issues
        ]
