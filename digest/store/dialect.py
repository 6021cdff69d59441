"""What differs between the databases the store runs on (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_T = TypeVar("_T")

#: Keys per statement when a query names rows one bind parameter each.
CHUNK = 500


def chunks(values: Collection[_T]) -> Iterator[list[_T]]:
    """``values`` ``CHUNK`` at a time: one bind parameter each stays far below SQLite's
    and PostgreSQL's caps on parameters per statement (32,766 and 65,535)."""
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` for the session's database, with its ``ON CONFLICT``
    clauses (both databases have them), so a check-then-insert becomes one statement
    that two processes cannot race."""
    if session.connection().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
