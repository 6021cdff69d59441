"""Claims on PostgreSQL: two workers sharing one database never take the same rows.

Runs when DIGEST_TEST_DATABASE_URL points at a PostgreSQL server; it creates and
drops a database of its own there.
"""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from digest.store.ledger import claim
from tests.mailserver.issue import queued_issue

URL = os.environ.get("DIGEST_TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith("postgresql"), reason="DIGEST_TEST_DATABASE_URL (PostgreSQL) is not set"
)


@pytest.fixture
def pg_url():  # type: ignore[no-untyped-def]
    name = f"digest_sending_{uuid.uuid4().hex[:8]}"
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_concurrent_claims_skip_rows_locked_by_another_worker(pg_url) -> None:  # type: ignore[no-untyped-def]
    issue = queued_issue(None, [f"r{i}@example.test" for i in range(10)], url=pg_url)  # type: ignore[arg-type]
    with issue.store.session() as first:
        mine = claim(first, issue.issue_id, "host-a:1", 4, 60)
        # The first transaction is still open: its rows are locked, not yet leased.
        with issue.store.session() as second:
            theirs = claim(second, issue.issue_id, "host-b:1", 4, 60)
    ids_a = {c.delivery_id for c in mine}
    ids_b = {c.delivery_id for c in theirs}
    assert len(ids_a) == len(ids_b) == 4
    assert not ids_a & ids_b
    issue.store.engine.dispose()
