"""Subscriber lists: import, export, status changes, suppression, and who may be sent to.

Addresses are validated with email-validator (syntax only, no DNS). An address is
unique per list by its local part as written and its domain lower-cased (its
``email_key``). Every status change is recorded in ``subscriber_events`` with its
moment and source. Re-importing never brings back someone who unsubscribed, bounced
or complained, and an address on the global suppression list (hard bounce,
complaint, too many soft bounces) is never sent to again from any list.

Who gets an issue is decided here, at send time: ``sendable_clause`` for the query
that queues deliveries, ``blocked_subscribers`` for the batch about to be sent.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from .errors import SubscriberError
from .models import Subscriber
from .store import Store
from .store.tables import (
    ListRow,
    PreferenceRow,
    SoftBounceRow,
    SubscriberEventRow,
    SubscriberRow,
    SuppressionRow,
    UTCDateTime,
    utcnow,
)

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
# A status someone chose or earned; an import must not overwrite it.
STICKY = frozenset({"unsubscribed", "bounced", "complained"})
# "send": a hard bounce the mail server gave while dispatch was sending.
SOURCES = ("import", "form", "confirm", "one-click", "preferences", "webhook", "cli", "send")
# Rows per statement during an import: large enough to amortise round trips, small
# enough that memory stays flat whatever the file size.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did, and every row it could not use (with its line number)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_status: int = 0
    problems: tuple[str, ...] = ()


def normalize_email(address: str) -> tuple[str, str]:
    """``(email, key)``: the address as stored, and its uniqueness key.

    The local part is kept as written (``Ann@`` and ``ann@`` may be two mailboxes);
    the domain is lower-cased. ``SubscriberError`` with the reason when invalid.
    """
    address = address.strip()
    if any(c in address for c in "\r\n"):
        raise SubscriberError("the address contains a line break")
    try:
        result = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    email = f"{local}@{domain.lower()}"
    return email, email


def email_key(address: str) -> str:
    """The uniqueness key of ``address`` (domain lower-cased), valid or not."""
    local, _, domain = address.strip().rpartition("@")
    return f"{local}@{domain.lower()}" if local else address.strip()


def get_list(session: Session, name: str, *, create: bool = False) -> ListRow | None:
    """The list called ``name``; created when ``create`` is set."""
    row = session.scalar(select(ListRow).where(ListRow.name == name))
    if row is None and create:
        row = ListRow(name=name)
        session.add(row)
        session.flush()
    return row


def find_subscriber(session: Session, list_row: ListRow, key: str) -> SubscriberRow | None:
    """The subscriber of ``list_row`` whose uniqueness key (see ``email_key``) is ``key``."""
    return session.scalar(
        select(SubscriberRow).where(
            SubscriberRow.list_id == list_row.id, SubscriberRow.email_key == key
        )
    )


def _need_list(session: Session, name: str) -> ListRow:
    row = get_list(session, name)
    if row is None:
        raise SubscriberError(f"There is no list '{name}'; import or add subscribers to it first.")
    return row


def set_status(
    session: Session,
    row: SubscriberRow,
    status: str,
    source: str,
    detail: str = "",
    *,
    now: datetime | None = None,
) -> bool:
    """Change ``row``'s status and record the change; ``False`` when it already had it.

    ``source`` is one of ``SOURCES``; ``ValueError`` otherwise (a bug, not bad input).
    """
    if status not in STATUSES or source not in SOURCES:
        raise ValueError(f"unknown status {status!r} or source {source!r}")
    if row.status == status:
        return False
    now = now or utcnow()
    session.add(
        SubscriberEventRow(
            subscriber_id=row.id,
            status=status,
            previous=row.status,
            source=source,
            detail=detail,
            created_at=now,
        )
    )
    row.status, row.status_source, row.updated_at = status, source, now
    return True


# -- CSV import ---------------------------------------------------------------


def _lines(handle: IO[bytes], path: Path, problems: list[tuple[int, str]]) -> Iterator[str]:
    # Decoded line by line so that one badly encoded line costs that line, not the file,
    # and so that the file is streamed rather than read whole.
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append((number, f"{path}, line {number}: is not valid UTF-8; skipped"))
            yield "\n"


def iter_csv(
    handle: IO[bytes], path: Path, problems: list[tuple[int, str]]
) -> Iterator[tuple[int, str, str, dict[str, str]]]:
    """Rows ``(line, email, name, attributes)`` of a subscriber CSV, streamed.

    The header must have an ``email`` column (any case); ``name`` is optional and
    every other column becomes an attribute. Rows that cannot be used are appended
    to ``problems`` with their line number. ``SubscriberError`` when the header is
    unusable (nothing can be imported then).
    """
    reader = csv.reader(_lines(handle, path, problems))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise SubscriberError(
            f"{path} is empty; it needs a header line with an 'email' column."
        ) from None
    except csv.Error as exc:
        raise SubscriberError(f"{path}, line 1: the header is not valid CSV ({exc}).") from None
    if problems and problems[0][0] == 1:
        raise SubscriberError(
            f"{path} is not UTF-8 text (its first line cannot be read); "
            "save it as CSV UTF-8 and import it again."
        )
    if "email" not in header:
        raise SubscriberError(
            f"{path} has no 'email' column (the header line is: {', '.join(header) or 'empty'})."
        )
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = reader.line_num
            problems.append((line, f"{path}, line {line}: is not valid CSV ({exc}); skipped"))
            continue
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            problems.append(
                (
                    line,
                    f"{path}, line {line}: has {len(values)} fields where the header has {len(header)}; skipped",
                )
            )
            continue
        record = dict(zip(header, values, strict=True))
        email = record.pop("email")
        name = record.pop("name", "").strip()
        yield line, email, name, {k: v for k, v in record.items() if k}


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_csv(store: Store, list_name: str, path: Path, *, status: str = "active") -> ImportReport:
    """Add or update the subscribers in ``path`` on ``list_name`` (created if new).

    The file is streamed and written in chunks of ``CHUNK`` rows with multi-row
    statements, in one transaction: memory stays flat and 100,000 rows take seconds.
    Bad rows are reported and skipped; the good ones are all imported. An existing
    subscriber gets the file's name and attributes, and the file's status unless they
    unsubscribed, bounced or complained.
    """
    if status not in ("active", "pending"):
        raise SubscriberError(
            f"'{status}' cannot be given to imported subscribers; use active or pending."
        )
    problems: list[tuple[int, str]] = []
    added = updated = unchanged = kept = 0
    now = utcnow()
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SubscriberError(f"{path} cannot be read ({exc.strerror}).") from None
    with handle, store.session() as session:
        list_id = get_list(session, list_name, create=True).id  # type: ignore[union-attr]
        for chunk in _chunks(iter_csv(handle, path, problems), CHUNK):
            wanted: dict[str, dict[str, Any]] = {}
            for line, raw_email, name, attributes in chunk:
                try:
                    email, key = normalize_email(raw_email)
                except SubscriberError as exc:
                    problems.append(
                        (
                            line,
                            f"{path}, line {line}: '{raw_email}' is not a valid address ({exc}); skipped",
                        )
                    )
                    continue
                if key in wanted:  # the same address twice in a file: the later row wins
                    wanted[key]["name"] = name or wanted[key]["name"]
                    wanted[key]["attributes"].update(attributes)
                    continue
                wanted[key] = {"email": email, "name": name, "attributes": attributes}
            existing = {
                row.email_key: row
                for row in session.execute(
                    select(
                        SubscriberRow.id,
                        SubscriberRow.email_key,
                        SubscriberRow.name,
                        SubscriberRow.status,
                        SubscriberRow.attributes,
                    ).where(SubscriberRow.list_id == list_id, SubscriberRow.email_key.in_(wanted))
                )
            }
            new = [
                {
                    "list_id": list_id,
                    "email": values["email"],
                    "email_key": key,
                    "name": values["name"],
                    "status": status,
                    "status_source": "import",
                    "attributes": values["attributes"],
                    "created_at": now,
                    "updated_at": now,
                }
                for key, values in wanted.items()
                if key not in existing
            ]
            if new:
                ids = session.execute(
                    insert(SubscriberRow.__table__).returning(
                        SubscriberRow.__table__.c.id, sort_by_parameter_order=True
                    ),
                    new,
                ).scalars()
                session.execute(
                    insert(SubscriberEventRow.__table__),
                    [
                        {
                            "subscriber_id": sid,
                            "status": status,
                            "previous": "",
                            "source": "import",
                            "detail": str(path.name),
                            "created_at": now,
                        }
                        for sid in ids
                    ],
                )
                added += len(new)
            changes: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for key, old in existing.items():
                values = wanted[key]
                change: dict[str, Any] = {}
                if values["name"] and values["name"] != old.name:
                    change["name"] = values["name"]
                merged = {**old.attributes, **values["attributes"]}
                if merged != old.attributes:
                    change["attributes"] = merged
                if old.status in STICKY:
                    kept += 1
                elif old.status != status:
                    change.update(status=status, status_source="import")
                    events.append(
                        {
                            "subscriber_id": old.id,
                            "status": status,
                            "previous": old.status,
                            "source": "import",
                            "detail": str(path.name),
                            "created_at": now,
                        }
                    )
                if change:
                    changes.append({"id": old.id, "updated_at": now, **change})
                    updated += 1
                else:
                    unchanged += 1
            # Grouped by the columns they set, so each group is one executemany.
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for change in changes:
                by_columns.setdefault(tuple(sorted(change)), []).append(change)
            for group in by_columns.values():
                session.execute(update(SubscriberRow), group)
            if events:
                session.execute(insert(SubscriberEventRow.__table__), events)
    problems.sort(key=lambda problem: problem[0])
    return ImportReport(added, updated, unchanged, kept, tuple(text for _, text in problems))


# -- single subscribers, export, counts ----------------------------------------------


def add_subscriber(
    store: Store,
    list_name: str,
    address: str,
    *,
    name: str = "",
    status: str = "active",
    source: str = "cli",
) -> tuple[Subscriber, bool]:
    """Add ``address`` to ``list_name`` (created if new); ``(subscriber, created)``.

    An existing subscriber keeps an unsubscribed, bounced or complained status:
    adding them again is no way around their choice.
    """
    if status not in ("active", "pending"):
        raise SubscriberError(
            f"'{status}' cannot be given to a new subscriber; use active or pending."
        )
    email, key = normalize_email(address)
    with store.session() as session:
        list_row = get_list(session, list_name, create=True)
        assert list_row is not None
        row = find_subscriber(session, list_row, key)
        created = row is None
        if row is None:
            now = utcnow()
            row = SubscriberRow(
                list_id=list_row.id,
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
            session.add(
                SubscriberEventRow(
                    subscriber_id=row.id, status=status, previous="", source=source, created_at=now
                )
            )
        else:
            if name:
                row.name = name
            if row.status not in STICKY:
                set_status(session, row, status, source)
        return Subscriber(id=row.id, email=row.email, name=row.name, list=list_name), created


def remove_subscriber(store: Store, list_name: str, address: str, *, forget: bool = False) -> str:
    """Unsubscribe ``address`` from ``list_name`` (source ``cli``), or with ``forget``
    delete the subscriber and their history. Returns a sentence saying what was done."""
    key = email_key(address)
    with store.session() as session:
        list_row = _need_list(session, list_name)
        row = find_subscriber(session, list_row, key)
        if row is None:
            raise SubscriberError(f"'{address}' is not on the list '{list_name}'.")
        if forget:
            session.delete(row)
            return f"Deleted {row.email} and their history from '{list_name}'."
        if set_status(session, row, "unsubscribed", "cli"):
            return f"Unsubscribed {row.email} from '{list_name}'."
        return f"{row.email} was already unsubscribed from '{list_name}'."


@dataclass(frozen=True, slots=True)
class Details:
    """Everything known about one subscriber: for ``digest subscribers show``."""

    subscriber: Subscriber
    status: str
    attributes: dict[str, Any]
    created_at: datetime
    suppressed: str | None
    soft_bounces: int
    preferences: Preferences
    history: tuple[tuple[datetime, str, str, str, str], ...]  # when, from, to, source, detail


def subscriber_details(store: Store, list_name: str, address: str) -> Details:
    """The status, attributes, preferences, suppression and full status history of
    ``address`` on ``list_name``; ``SubscriberError`` when it is not there."""
    key = email_key(address)
    with store.session() as session:
        list_row = _need_list(session, list_name)
        row = find_subscriber(session, list_row, key)
        if row is None:
            raise SubscriberError(f"'{address}' is not on the list '{list_name}'.")
        suppression = session.scalar(select(SuppressionRow).where(SuppressionRow.email_key == key))
        soft = session.get(SoftBounceRow, key)
        events = session.scalars(
            select(SubscriberEventRow)
            .where(SubscriberEventRow.subscriber_id == row.id)
            .order_by(SubscriberEventRow.id)
        )
        return Details(
            subscriber=Subscriber(id=row.id, email=row.email, name=row.name, list=list_name),
            status=row.status,
            attributes=dict(row.attributes),
            created_at=row.created_at,
            suppressed=(
                f"{suppression.reason} ({suppression.source}, {suppression.created_at:%Y-%m-%d %H:%M} UTC)"
                if suppression
                else None
            ),
            soft_bounces=soft.count if soft else 0,
            preferences=get_preferences(session, row.id),
            history=tuple((e.created_at, e.previous, e.status, e.source, e.detail) for e in events),
        )


def list_subscribers(store: Store, list_name: str) -> list[tuple[Subscriber, str]]:
    """Every subscriber of ``list_name`` with its status; ``SubscriberError`` if no such list."""
    with store.session() as session:
        list_row = _need_list(session, list_name)
        rows = session.scalars(
            select(SubscriberRow)
            .where(SubscriberRow.list_id == list_row.id)
            .order_by(SubscriberRow.id)
        )
        return [
            (Subscriber(id=r.id, email=r.email, name=r.name, list=list_name), r.status)
            for r in rows
        ]


def export_csv(store: Store, list_name: str, out: IO[str]) -> int:
    """Write ``list_name`` as CSV (email, name, status, status_source, updated_at, then
    one column per attribute) to ``out``; returns the number of rows. The file imports
    back with ``import_csv``."""
    with store.session() as session:
        list_row = _need_list(session, list_name)
        where = SubscriberRow.list_id == list_row.id
        keys: set[str] = set()
        for (attributes,) in session.execute(select(SubscriberRow.attributes).where(where)):
            keys.update(attributes)
        extra = sorted(keys - {"email", "name", "status", "status_source", "updated_at"})
        writer = csv.writer(out)
        writer.writerow(["email", "name", "status", "status_source", "updated_at", *extra])
        count = 0
        query = select(SubscriberRow).where(where).order_by(SubscriberRow.id)
        for row in session.scalars(query.execution_options(yield_per=CHUNK)):
            writer.writerow(
                [
                    row.email,
                    row.name,
                    row.status,
                    row.status_source,
                    row.updated_at.isoformat(),
                    *(str(row.attributes.get(k, "")) for k in extra),
                ]
            )
            count += 1
        return count


def status_counts(store: Store, list_name: str) -> dict[str, int]:
    """Subscribers of ``list_name`` per status (every status, zeros included), plus
    ``suppressed``: how many of them are on the global suppression list and
    ``paused``: how many active ones paused their subscription."""
    with store.session() as session:
        list_row = _need_list(session, list_name)
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in session.execute(
            select(SubscriberRow.status, func.count())
            .where(SubscriberRow.list_id == list_row.id)
            .group_by(SubscriberRow.status)
        ):
            counts[status] = n
        counts["suppressed"] = (
            session.scalar(
                select(func.count())
                .select_from(SubscriberRow)
                .where(SubscriberRow.list_id == list_row.id, _suppressed())
            )
            or 0
        )
        counts["paused"] = (
            session.scalar(
                select(func.count())
                .select_from(SubscriberRow)
                .where(
                    SubscriberRow.list_id == list_row.id,
                    SubscriberRow.status == "active",
                    _paused(utcnow()),
                )
            )
            or 0
        )
        return counts


# -- suppression, bounces --------------------------------------------------------------


def is_suppressed(session: Session, address: str) -> bool:
    """Whether ``address`` is on the global suppression list."""
    return (
        session.scalar(
            select(SuppressionRow.id).where(SuppressionRow.email_key == email_key(address))
        )
        is not None
    )


def suppress(session: Session, address: str, reason: str, source: str, detail: str = "") -> bool:
    """Put ``address`` on the global suppression list and mark it on every list
    (``complained`` for a complaint, ``bounced`` otherwise). ``False`` if it was already
    suppressed."""
    key = email_key(address)
    now = utcnow()
    new = session.scalar(select(SuppressionRow.id).where(SuppressionRow.email_key == key)) is None
    if new:
        session.add(
            SuppressionRow(
                email_key=key, reason=reason, source=source, detail=detail, created_at=now
            )
        )
    # A manual suppression leaves statuses alone (the suppression alone stops sending).
    status = {"complaint": "complained", "hard-bounce": "bounced", "soft-bounces": "bounced"}.get(
        reason
    )
    if status is not None:
        kind = source.partition(":")[0]  # 'webhook:postmark' is recorded as 'webhook'
        for row in session.scalars(select(SubscriberRow).where(SubscriberRow.email_key == key)):
            # A complaint outranks a bounce; nothing else changes a complained subscriber.
            if row.status != "complained":
                set_status(session, row, status, kind, detail, now=now)
    session.flush()
    return new


def unsuppress(session: Session, address: str) -> bool:
    """Take ``address`` off the suppression list (its subscribers keep their status)."""
    key = email_key(address)
    session.execute(delete(SoftBounceRow).where(SoftBounceRow.email_key == key))
    result = session.execute(delete(SuppressionRow).where(SuppressionRow.email_key == key))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_bounce(
    session: Session,
    address: str,
    kind: str,
    source: str,
    detail: str = "",
    *,
    soft_limit: int = 3,
) -> str:
    """Apply one provider event: ``kind`` is ``hard``, ``complaint`` or ``soft``.

    Hard bounces and complaints suppress the address at once; soft bounces are
    counted and suppress it at the ``soft_limit``-th. Returns what was done
    (``suppressed``, ``already suppressed``, ``counted``).
    """
    if kind in ("hard", "complaint"):
        reason = "complaint" if kind == "complaint" else "hard-bounce"
        return (
            "suppressed"
            if suppress(session, address, reason, source, detail)
            else "already suppressed"
        )
    if kind != "soft":
        raise ValueError(f"unknown bounce kind {kind!r}")
    key = email_key(address)
    row = session.get(SoftBounceRow, key)
    if row is None:
        row = SoftBounceRow(email_key=key, count=0)
        session.add(row)
    row.count += 1
    row.last_at = utcnow()
    if row.count >= soft_limit:
        done = suppress(
            session, address, "soft-bounces", source, f"{row.count} soft bounces; {detail}"
        )
        return "suppressed" if done else "already suppressed"
    return "counted"


# -- who may be sent to -----------------------------------------------------------------


def _suppressed() -> ColumnElement[bool]:
    return exists().where(SuppressionRow.email_key == SubscriberRow.email_key)


def _paused(now: datetime) -> ColumnElement[bool]:
    return exists().where(
        PreferenceRow.subscriber_id == SubscriberRow.id, PreferenceRow.paused_until > now
    )


def sendable_clause(now: datetime | None = None) -> ColumnElement[bool]:
    """A WHERE clause on ``SubscriberRow``: active, not suppressed, not paused at ``now``."""
    now = now or utcnow()
    return and_(SubscriberRow.status == "active", ~_suppressed(), ~_paused(now))


def blocked_subscribers(
    session: Session, rows: Sequence[SubscriberRow], now: datetime | None = None
) -> dict[int, str]:
    """The subscribers among ``rows`` who must not be sent to now, with the reason
    (their status, ``suppressed`` or ``paused``). One query per batch, for dispatch."""
    now = now or utcnow()
    blocked = {row.id: row.status for row in rows if row.status != "active"}
    ids = [row.id for row in rows if row.id not in blocked]
    if not ids:
        return blocked
    # Core on the session's connection: this runs for every batch a send claims.
    for sid, suppressed in session.connection().execute(_blocked(), {"ids": ids, "now": now}):
        blocked[sid] = "suppressed" if suppressed else "paused"
    return blocked


@functools.cache
def _blocked() -> Select[tuple[int, bool]]:
    """The query of ``blocked_subscribers``, built once (parameters ``ids`` and ``now``)."""
    return select(SubscriberRow.id, _suppressed()).where(
        SubscriberRow.id.in_(bindparam("ids", expanding=True)),
        or_(_suppressed(), _paused(bindparam("now", type_=UTCDateTime()))),  # type: ignore[arg-type]
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


# -- preferences ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preferences:
    """A subscriber's choices: ``sections`` wanted (``None``: every section) and
    ``paused_until`` (``None``: not paused)."""

    sections: tuple[str, ...] | None = None
    paused_until: datetime | None = None


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
