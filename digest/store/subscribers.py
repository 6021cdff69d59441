"""What the store keeps about subscribers: lists, subscribers and their status history,
the global suppression list, soft bounce counts and preferences.

Every function takes a session from ``Store.session()`` and runs inside its
transaction; callers get frozen values (``SubscriberRecord``, ``Preferences``, ...),
never rows. Which status change is allowed is decided by the subscriptions service
(``digest.subscriptions``); this module only writes what it is told, and writes the
history row of every status it sets (``create``, ``write_status``; ``note`` records an
event that sets none). An import's bulk statements are in ``subscriber_import``. Keys
(``email_key``) are the subscriptions service's: the address lower-cased.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from ..errors import SubscriberError
from ..models import Subscriber
from .status import SubscriberStatus
from .tables import (
    INTEGER_MAX,
    ListRow,
    PreferenceRow,
    SoftBounceRow,
    SubscriberEventRow,
    SubscriberRow,
    SuppressionRow,
    UTCDateTime,
    utcnow,
)

#: Rows fetched per round trip when a whole list is streamed (export).
YIELD_PER = 2000


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """One subscriber of one list as stored."""

    id: int
    list_name: str
    email: str
    email_key: str
    name: str
    status: str
    status_source: str
    attributes: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime

    def subscriber(self) -> Subscriber:
        """The recipient as the sender sees it."""
        return Subscriber(id=self.id, email=self.email, name=self.name, list=self.list_name)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One row of a subscriber's history."""

    created_at: datetime
    previous: str
    status: str
    source: str
    detail: str


@dataclass(frozen=True, slots=True)
class Suppression:
    """An address on the global suppression list: why, from where and since when."""

    reason: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Preferences:
    """A subscriber's choices: ``sections`` wanted (``None``: every section) and
    ``paused_until`` (``None``: not paused)."""

    sections: tuple[str, ...] | None = None
    paused_until: datetime | None = None


class HasStatus(Protocol):
    """Anything with a subscriber id and status (a claimed delivery, a record)."""

    @property
    def id(self) -> int: ...

    @property
    def status(self) -> str: ...


def _record(row: SubscriberRow, list_name: str) -> SubscriberRecord:
    return SubscriberRecord(
        id=row.id,
        list_name=list_name,
        email=row.email,
        email_key=row.email_key,
        name=row.name,
        status=row.status,
        status_source=row.status_source,
        attributes=dict(row.attributes),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# A subscriber row with the name of its list: what ``_record`` is built from.
_WITH_LIST = select(SubscriberRow, ListRow.name).join(ListRow, ListRow.id == SubscriberRow.list_id)


# -- lists and subscribers ---------------------------------------------------------------


def list_id(session: Session, name: str, *, create: bool = False) -> int | None:
    """The id of the list called ``name``; the list is created when ``create`` is set."""
    found = session.scalar(select(ListRow.id).where(ListRow.name == name))
    if found is None and create:
        row = ListRow(name=name)
        session.add(row)
        session.flush()
        found = row.id
    return found


def require_list(session: Session, name: str) -> int:
    """The id of the list called ``name``; ``SubscriberError`` when there is none."""
    found = list_id(session, name)
    if found is None:
        raise SubscriberError(f"There is no list '{name}'; import or add subscribers to it first.")
    return found


def find(session: Session, list_name: str, key: str) -> SubscriberRecord | None:
    """The subscriber of ``list_name`` whose uniqueness key is ``key``."""
    found = session.execute(
        _WITH_LIST.where(ListRow.name == list_name, SubscriberRow.email_key == key)
    ).first()
    return _record(found[0], found[1]) if found else None


def get(
    session: Session, subscriber_id: int, list_name: str | None = None
) -> SubscriberRecord | None:
    """Subscriber ``subscriber_id`` (only if it is on ``list_name``, when given)."""
    if not 0 < subscriber_id <= INTEGER_MAX:
        return None
    query = _WITH_LIST.where(SubscriberRow.id == subscriber_id)
    if list_name is not None:
        query = query.where(ListRow.name == list_name)
    found = session.execute(query).first()
    return _record(found[0], found[1]) if found else None


def with_key(session: Session, key: str) -> list[SubscriberRecord]:
    """The subscribers with uniqueness key ``key`` on every list, oldest first."""
    rows = session.execute(
        _WITH_LIST.where(SubscriberRow.email_key == key).order_by(SubscriberRow.id)
    )
    return [_record(row, name) for row, name in rows]


def members(session: Session, list_name: str) -> Iterator[SubscriberRecord]:
    """Every subscriber of ``list_name`` in the order they were added, streamed."""
    query = _WITH_LIST.where(ListRow.name == list_name).order_by(SubscriberRow.id)
    for row, name in session.execute(query.execution_options(yield_per=YIELD_PER)):
        yield _record(row, name)


def attribute_names(session: Session, list_name: str) -> set[str]:
    """Every attribute name used by a subscriber of ``list_name``."""
    names: set[str] = set()
    query = (
        select(SubscriberRow.attributes)
        .join(ListRow, ListRow.id == SubscriberRow.list_id)
        .where(ListRow.name == list_name)
    )
    for (attributes,) in session.execute(query):
        names.update(attributes)
    return names


def create(
    session: Session,
    list_name: str,
    email: str,
    key: str,
    *,
    name: str,
    status: SubscriberStatus,
    source: str,
    detail: str = "",
    now: datetime,
) -> SubscriberRecord:
    """Insert a subscriber of ``list_name`` (the list is created if new) with its first
    status, and that status's history row."""
    row = SubscriberRow(
        list_id=list_id(session, list_name, create=True),
        email=email,
        email_key=key,
        name=name,
        status=status,
        status_source=source,
        attributes={},
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _add_event(session, row.id, "", status, source, detail, now)
    return _record(row, list_name)


def write_status(
    session: Session,
    subscriber_id: int,
    previous: str,
    status: SubscriberStatus,
    source: str,
    detail: str,
    now: datetime,
) -> None:
    """Set a subscriber's status and add the history row saying so."""
    session.execute(
        update(SubscriberRow)
        .where(SubscriberRow.id == subscriber_id)
        .values(status=status, status_source=source, updated_at=now)
    )
    _add_event(session, subscriber_id, previous, status, source, detail, now)


def _add_event(
    session: Session,
    subscriber_id: int,
    previous: str,
    status: SubscriberStatus,
    source: str,
    detail: str,
    now: datetime,
) -> None:
    session.add(
        SubscriberEventRow(
            subscriber_id=subscriber_id,
            status=status,
            previous=previous,
            source=source,
            detail=detail,
            created_at=now,
        )
    )


def note(
    session: Session,
    subscriber_id: int,
    status: SubscriberStatus,
    source: str,
    detail: str,
    now: datetime,
) -> None:
    """A history row that changes no status (``status`` is the subscriber's own): an
    event worth keeping, such as a request to come back while unsubscribed."""
    _add_event(session, subscriber_id, status, status, source, detail, now)


def last_event(session: Session, subscriber_id: int) -> StatusEvent | None:
    """The newest row of a subscriber's history."""
    event = session.scalar(
        select(SubscriberEventRow)
        .where(SubscriberEventRow.subscriber_id == subscriber_id)
        .order_by(SubscriberEventRow.id.desc())
        .limit(1)
    )
    if event is None:
        return None
    return StatusEvent(event.created_at, event.previous, event.status, event.source, event.detail)


def touch(session: Session, subscriber_id: int, *, now: datetime, name: str = "") -> None:
    """Set ``updated_at`` to ``now`` (and the name, when one is given)."""
    values: dict[str, Any] = {"updated_at": now}
    if name:
        values["name"] = name
    session.execute(update(SubscriberRow).where(SubscriberRow.id == subscriber_id).values(values))


def rename(session: Session, subscriber_id: int, name: str) -> None:
    """Change a subscriber's name."""
    session.execute(
        update(SubscriberRow).where(SubscriberRow.id == subscriber_id).values(name=name)
    )


def forget(session: Session, subscriber_id: int) -> None:
    """Delete a subscriber; their history, deliveries and preferences go with them."""
    session.execute(delete(SubscriberRow).where(SubscriberRow.id == subscriber_id))


def history(session: Session, subscriber_id: int) -> tuple[StatusEvent, ...]:
    """Every status change of a subscriber, oldest first."""
    events = session.scalars(
        select(SubscriberEventRow)
        .where(SubscriberEventRow.subscriber_id == subscriber_id)
        .order_by(SubscriberEventRow.id)
    )
    return tuple(
        StatusEvent(e.created_at, e.previous, e.status, e.source, e.detail) for e in events
    )


def status_counts(session: Session, list_name: str) -> dict[str, int]:
    """Subscribers of ``list_name`` per status (every status, zeros included), plus
    ``suppressed`` (on the global suppression list) and ``paused`` (active and paused)."""
    on_list = and_(ListRow.id == SubscriberRow.list_id, ListRow.name == list_name)
    result = {str(status): 0 for status in SubscriberStatus}
    for status, n in session.execute(
        select(SubscriberRow.status, func.count()).where(on_list).group_by(SubscriberRow.status)
    ):
        result[status] = n
    result["suppressed"] = (
        session.scalar(
            select(func.count()).select_from(SubscriberRow).where(on_list, _suppressed())
        )
        or 0
    )
    result["paused"] = (
        session.scalar(
            select(func.count())
            .select_from(SubscriberRow)
            .where(on_list, SubscriberRow.status == SubscriberStatus.ACTIVE, _paused(utcnow()))
        )
        or 0
    )
    return result


# -- suppression, soft bounces -------------------------------------------------------------


def suppression(session: Session, key: str) -> Suppression | None:
    """Why the address with uniqueness key ``key`` is suppressed, if it is."""
    row = session.scalar(select(SuppressionRow).where(SuppressionRow.email_key == key))
    return Suppression(row.reason, row.source, row.created_at) if row else None


def is_suppressed(session: Session, key: str) -> bool:
    """Whether the address with uniqueness key ``key`` is on the suppression list."""
    found = session.scalar(select(SuppressionRow.id).where(SuppressionRow.email_key == key))
    return found is not None


def add_suppression(
    session: Session, key: str, reason: str, source: str, detail: str, now: datetime
) -> bool:
    """Put ``key`` on the suppression list; ``False`` when it already was."""
    if is_suppressed(session, key):
        return False
    session.add(
        SuppressionRow(email_key=key, reason=reason, source=source, detail=detail, created_at=now)
    )
    session.flush()
    return True


def remove_suppression(session: Session, key: str) -> bool:
    """Take ``key`` off the suppression list and forget its soft bounces; ``False``
    when it was not suppressed."""
    session.execute(delete(SoftBounceRow).where(SoftBounceRow.email_key == key))
    result = session.execute(delete(SuppressionRow).where(SuppressionRow.email_key == key))
    # Session.execute is typed as returning Result; a DELETE gives a CursorResult.
    return bool(result.rowcount)  # type: ignore[attr-defined]


def soft_bounces(session: Session, key: str) -> int:
    """How many soft bounces ``key`` has had."""
    return session.scalar(select(SoftBounceRow.count).where(SoftBounceRow.email_key == key)) or 0


def count_soft_bounce(session: Session, key: str, now: datetime) -> int:
    """Count one more soft bounce of ``key``; the count after it."""
    row = session.get(SoftBounceRow, key)
    if row is None:
        row = SoftBounceRow(email_key=key, count=0)
        session.add(row)
    row.count += 1
    row.last_at = now
    session.flush()
    return row.count


# -- who may be sent to ----------------------------------------------------------------------


def _suppressed() -> ColumnElement[bool]:
    return exists().where(SuppressionRow.email_key == SubscriberRow.email_key)


def _paused(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    return exists().where(
        PreferenceRow.subscriber_id == SubscriberRow.id, PreferenceRow.paused_until > now
    )


def sendable_clause(now: datetime | None = None) -> ColumnElement[bool]:
    """A WHERE clause on ``SubscriberRow``: active, not suppressed, not paused at ``now``."""
    now = now or utcnow()
    return and_(SubscriberRow.status == SubscriberStatus.ACTIVE, ~_suppressed(), ~_paused(now))


def blocked_subscribers(
    session: Session, rows: Sequence[HasStatus], now: datetime | None = None
) -> dict[int, str]:
    """The subscribers among ``rows`` who must not be sent to now, with the reason
    (their status, ``suppressed`` or ``paused``). One query per batch, for dispatch."""
    now = now or utcnow()
    blocked = {row.id: row.status for row in rows if row.status != SubscriberStatus.ACTIVE}
    ids = [row.id for row in rows if row.id not in blocked]
    if not ids:
        return blocked
    # Core on the session's connection: this runs for every batch a send claims.
    for sid, suppressed in session.connection().execute(_BLOCKED, {"ids": ids, "now": now}):
        blocked[sid] = "suppressed" if suppressed else "paused"
    return blocked


# The query of ``blocked_subscribers``, built once (parameters ``ids`` and ``now``).
_BLOCKED = select(SubscriberRow.id, _suppressed()).where(
    SubscriberRow.id.in_(bindparam("ids", expanding=True)),
    or_(_suppressed(), _paused(bindparam("now", type_=UTCDateTime()))),
)


def count_active(session: Session, list_name: str) -> int:
    """How many subscribers of ``list_name`` would get an issue now."""
    return (
        session.scalar(
            select(func.count(SubscriberRow.id))
            .join(ListRow, ListRow.id == SubscriberRow.list_id)
            .where(ListRow.name == list_name, sendable_clause())
        )
        or 0
    )


# -- preferences -------------------------------------------------------------------------------


def get_preferences(session: Session, subscriber_id: int) -> Preferences:
    """The preferences of a subscriber (defaults when they never chose)."""
    row = session.get(PreferenceRow, subscriber_id)
    if row is None:
        return Preferences()
    paused = row.paused_until if row.paused_until and row.paused_until > utcnow() else None
    return Preferences(tuple(row.sections) if row.sections is not None else None, paused)


def set_preferences(
    session: Session,
    subscriber_id: int,
    *,
    sections: Sequence[str] | None,
    pause_weeks: int,
) -> Preferences:
    """Save a subscriber's sections (``None``: all) and pause them for ``pause_weeks``
    from now (0 resumes sending)."""
    now = utcnow()
    row = session.get(PreferenceRow, subscriber_id)
    if row is None:
        row = PreferenceRow(subscriber_id=subscriber_id)
        session.add(row)
    row.sections = list(sections) if sections is not None else None
    row.paused_until = now + timedelta(weeks=pause_weeks) if pause_weeks > 0 else None
    row.updated_at = now
    session.flush()
    return Preferences(tuple(row.sections) if row.sections is not None else None, row.paused_until)


def section_preferences(session: Session, list_name: str) -> dict[int, frozenset[str]]:
    """Subscribers of ``list_name`` who chose sections, with the sections they want."""
    rows = session.execute(
        select(PreferenceRow.subscriber_id, PreferenceRow.sections)
        .join(SubscriberRow, SubscriberRow.id == PreferenceRow.subscriber_id)
        .join(ListRow, ListRow.id == SubscriberRow.list_id)
        .where(ListRow.name == list_name)
    )
    return {sid: frozenset(sections) for sid, sections in rows if sections is not None}
