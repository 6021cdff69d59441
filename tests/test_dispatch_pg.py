"""Claims on PostgreSQL: two workers sharing one database never take the same rows.

Runs when DIGEST_TEST_DATABASE_URL points at a PostgreSQL server; it creates and
drops a database of its own there.
"""

from __future__ import annotations

from digest.store.ledger import claim
from tests.support.mailserver.issue import queued_issue


def test_concurrent_claims_skip_rows_locked_by_another_worker(postgres_url: str) -> None:
    issue = queued_issue(None, [f"r{i}@example.test" for i in range(10)], url=postgres_url)
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
