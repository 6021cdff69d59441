"""The bulk statements of a subscriber import (``digest.subscribers_csv.import_csv``):
per chunk of a file, which of its addresses a list already has, then the inserts,
updates and history rows, each a multi-row statement.

Every statement's cost depends on the chunk, not on the list: an import of a file ten
times longer takes about ten times as long, on SQLite and on PostgreSQL, whatever the
planner's statistics say (``bench/import``). Keys (``email_key``) are the subscriptions
service's, as in ``digest.store.subscribers``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, String, Table, bindparam, exists, func, insert, select, true, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, aliased

from .status import SubscriberStatus
from .tables import SubscriberEventRow, SubscriberRow


@dataclass(frozen=True, slots=True)
class Existing:
    """What an import compares a file's row with."""

    id: int
    name: str
    status: str
    attributes: dict[str, Any]


_COLUMNS = (
    SubscriberRow.id,
    SubscriberRow.email_key,
    SubscriberRow.name,
    SubscriberRow.status,
    SubscriberRow.attributes,
)


def lookup(dialect: str, list_id: int, keys: Sequence[str]) -> Select[Any]:
    """The query of ``existing`` on database ``dialect``: one probe of the unique
    (list_id, email_key) index per key, however long the list.

    On PostgreSQL the plain ``list_id = ? AND email_key IN (...)`` reads the whole list
    for every chunk when the planner has no statistics for the list, which is the case
    throughout an import into a new list (and autovacuum cannot analyze the import's
    own rows before they are committed): it takes ``list_id = ?`` for a handful of
    rows, scans the list and filters the keys out of every row, each chunk slower than
    the last. Once psycopg prepares the statement (its fifth use), the generic plan
    compares each row with the 2,000 parameters one by one: seconds per chunk at 60,000
    rows. Here a lateral join over the keys probes the index per key: its ``LIMIT 1``
    (the key is unique) keeps the planner from flattening it back into a join that may
    scan the list, and there is no index on list_id alone for it to walk instead
    (migration 0016). SQLite's planner probes the index for ``IN`` as is.
    """
    if dialect != "postgresql":
        return select(*_COLUMNS).where(
            SubscriberRow.list_id == list_id, SubscriberRow.email_key.in_(keys)
        )
    asked = (
        func.unnest(bindparam("keys", list(keys), type_=postgresql.ARRAY(String)))
        .table_valued("key")
        .render_derived(name="asked")
    )
    found = (
        select(*_COLUMNS)
        .where(SubscriberRow.list_id == list_id, SubscriberRow.email_key == asked.c.key)
        .limit(1)
        .lateral("found")
    )
    return select(found).select_from(asked).join(found, true())


def existing(session: Session, list_id: int, keys: Iterable[str]) -> dict[str, Existing]:
    """The subscribers of list ``list_id`` among the uniqueness ``keys``, by key."""
    query = lookup(session.connection().dialect.name, list_id, list(keys))
    return {
        key: Existing(sid, name, status, attributes)
        for sid, key, name, status, attributes in session.execute(query)
    }


def left_since_active(session: Session, ids: Iterable[int], left: Iterable[str]) -> set[int]:
    """The subscribers among ``ids`` whose history holds one of the ``left`` statuses
    with no active one after it."""
    later = aliased(SubscriberEventRow)
    query = (
        select(SubscriberEventRow.subscriber_id)
        .where(
            SubscriberEventRow.subscriber_id.in_(list(ids)),
            SubscriberEventRow.status.in_(list(left)),
            ~exists().where(
                later.subscriber_id == SubscriberEventRow.subscriber_id,
                later.status == SubscriberStatus.ACTIVE,
                later.id > SubscriberEventRow.id,
            ),
        )
        .distinct()
    )
    return set(session.scalars(query))


def insert_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert subscribers (dicts of ``subscribers`` columns) in one statement; their ids
    in the order given."""
    table = cast(Table, SubscriberRow.__table__)
    return list(
        session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        ).scalars()
    )


def update_many(session: Session, changes: Sequence[Mapping[str, Any]]) -> None:
    """Apply changes (dicts of ``id`` and the columns to set), one statement per set of
    columns."""
    by_columns: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for change in changes:
        by_columns.setdefault(tuple(sorted(change)), []).append(change)
    for group in by_columns.values():
        session.execute(update(SubscriberRow), group)


def insert_events(session: Session, events: Sequence[Mapping[str, Any]]) -> None:
    """Insert history rows (dicts of ``subscriber_events`` columns) in one statement."""
    if events:
        session.execute(insert(cast(Table, SubscriberEventRow.__table__)), events)
