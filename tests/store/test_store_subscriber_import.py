"""``digest.store.subscriber_import`` on SQLite and PostgreSQL: the bulk statements an
import runs per chunk, and a key lookup that reads the keys it is asked for, not the
list, whatever the planner's statistics say (what keeps an import linear)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from digest.store import Store
from digest.store import subscriber_import as bulk
from digest.store import subscribers as rows
from digest.store.tables import utcnow
from tests.support import caught_sql


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def _add(session: Session, list_name: str, emails: list[str]) -> tuple[int, list[int]]:
    """Subscribers ``emails`` (their own keys) on ``list_name``: the list's id and theirs."""
    now = utcnow()
    list_id = rows.list_id(session, list_name, create=True)
    assert list_id is not None
    base = {"list_id": list_id, "status_source": "import", "created_at": now, "updated_at": now}
    new = [
        {**base, "email": e, "email_key": e, "name": "", "status": "active", "attributes": {}}
        for e in emails
    ]
    return list_id, bulk.insert_many(session, new)


def test_the_bulk_statements_of_an_import(store: Store) -> None:
    now = utcnow()
    with store.session() as session:
        list_id, ids = _add(session, "demo", ["a@example.org", "b@example.org"])
        bulk.update_many(
            session,
            [
                {"id": ids[0], "name": "A", "updated_at": now},
                {"id": ids[1], "attributes": {"city": "Oslo"}, "updated_at": now},
            ],
        )
        bulk.insert_events(
            session,
            [{"subscriber_id": ids[1], "status": "active", "previous": "", "source": "import"}],
        )
    with store.session() as session:
        found = bulk.existing(session, list_id, ["a@example.org", "b@example.org", "c@example.org"])
        assert {k: (v.id, v.name, v.attributes) for k, v in found.items()} == {
            "a@example.org": (ids[0], "A", {}),
            "b@example.org": (ids[1], "", {"city": "Oslo"}),
        }
        assert rows.attribute_names(session, "demo") == {"city"}
        assert [r.email for r in rows.members(session, "demo")] == [
            "a@example.org",
            "b@example.org",
        ]
        assert len(rows.history(session, ids[1])) == 1


def _rows_read(plan: dict[str, Any]) -> int:
    """Rows a PostgreSQL plan (EXPLAIN ANALYZE, JSON) took from table or index scans,
    those its filters threw away included."""
    loops = plan.get("Actual Loops", 1)
    read = 0
    if "Scan" in plan["Node Type"] and plan["Node Type"] != "Function Scan":
        read = (plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)) * loops
    return read + sum(_rows_read(child) for child in plan.get("Plans", []))


@pytest.mark.parametrize("statistics", ["none", "stale"])
def test_the_key_lookup_reads_the_keys_asked_for_not_the_list(
    store: Store, statistics: str
) -> None:
    # "none": the list is new in a new database, and its rows are the import's own
    # (uncommitted, so never analyzed). "stale": the statistics describe another list.
    if statistics == "stale":
        with store.session() as session:
            _add(session, "old", [f"old{n}@example.org" for n in range(500)])
        with store.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    keys = [f"reader{n}@example.org" for n in range(500)]
    asked = [*keys[100:110], "nobody@example.org"]
    with store.session() as session:
        list_id, _ = _add(session, "new", keys)
        connection = session.connection()
        query = bulk.lookup(connection.dialect.name, list_id, asked)
        if connection.dialect.name == "postgresql":
            compiled = query.compile(dialect=connection.dialect)
            sql = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
            (plan,) = connection.exec_driver_sql(sql, compiled.construct_params()).scalar_one()
            assert _rows_read(plan["Plan"]) <= len(asked), plan
        else:  # SQLite reads no statistics unless ANALYZE wrote them; it probes the index
            compiled = query.compile(
                dialect=connection.dialect, compile_kwargs={"literal_binds": True}
            )
            shown = " ".join(
                str(row) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
            )
            assert "SEARCH subscribers USING INDEX" in shown and "email_key=?" in shown, shown
        assert sorted(bulk.existing(session, list_id, asked)) == keys[100:110]


def _scans(plan: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """The scan nodes of a PostgreSQL plan (JSON) that read ``table``."""
    own = [plan] if plan.get("Relation Name") == table else []
    return own + [node for child in plan.get("Plans", []) for node in _scans(child, table)]


@pytest.mark.parametrize("statistics", ["none", "stale"])
def test_an_address_on_every_list_is_found_without_reading_the_table(
    store: Store, statistics: str
) -> None:
    # A bounce, complaint or suppression names an address on every list: each webhook
    # event once read the whole subscribers table.
    with store.session() as session:
        _add(session, "old", [f"reader{n}@example.org" for n in range(500)])
        _add(session, "new", [f"reader{n}@example.org" for n in range(0, 500, 2)])
    if statistics == "stale":
        with store.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    with store.session() as session:
        with caught_sql(session.connection()) as ran:
            found = rows.with_key(session, "reader10@example.org")
        assert sorted(r.list_name for r in found) == ["new", "old"]
        sql, parameters = ran[-1]
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"
            (plan,) = connection.exec_driver_sql(explain, parameters).scalar_one()
            (scan,) = _scans(plan["Plan"], "subscribers")
            assert scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0) <= 2, plan
        else:
            explain = f"EXPLAIN QUERY PLAN {sql}"
            shown = " ".join(str(row) for row in connection.exec_driver_sql(explain, parameters))
            assert "SEARCH subscribers USING INDEX ix_subscribers_email_key" in shown, shown
