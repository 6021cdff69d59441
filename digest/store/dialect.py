"""What differs between the databases the store runs on (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` for the session's database, with its ``ON CONFLICT``
    clauses (both databases have them), so a check-then-insert becomes one statement
    that two processes cannot race."""
    if session.connection().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
