"""`digest ledger prune --older-than 180d`: old issues lose their per-recipient rows,
keep their counts in `history`; recent and unfinished issues keep every row; the claim
query reads one issue's queued rows in order from an index whatever the statistics."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from digest.store import ledger
from digest.store.tables import DeliveryRow, IssueRow, utcnow
from tests.support import caught_sql
from tests.support.mailserver.issue import queued_issue
from tests.support.schedule import Project, Sent, run_cli, sent  # noqa: F401  (the fixture)


def test_prune_deletes_old_rows_and_history_still_counts_them(
    sent: Sent,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = sent.project.store()
    code, out, _ = run_cli(
        capsys, "-c", str(sent.config), "ledger", "prune", "--older-than", "180d"
    )
    assert code == 0 and "Pruned 0 ledger row(s) of 0 issue(s)" in out
    with store.session() as session:
        session.execute(update(IssueRow).values(sent_at=utcnow() - timedelta(days=181)))
    code, out, _ = run_cli(
        capsys, "-c", str(sent.config), "ledger", "prune", "--older-than", "180d"
    )
    assert code == 0 and "Pruned 4 ledger row(s) of 1 issue(s)" in out
    with store.session() as session:
        assert session.scalar(select(func.count(DeliveryRow.id))) == 0
    code, out, _ = run_cli(capsys, "-c", str(sent.config), "history", "news", "--json")
    (issue,) = json.loads(out)
    assert (issue["recipients"], issue["sent"], issue["failed"]) == (4, 3, 1)
    store.close()


def test_prune_refuses_a_duration_it_cannot_read(
    sent: Sent,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(
        capsys, "-c", str(sent.config), "ledger", "prune", "--older-than", "soon"
    )
    assert code == 1 and "--older-than" in err and "Traceback" not in err


def test_an_unfinished_issue_keeps_its_rows(database_url: str) -> None:
    issue = queued_issue(None, ["a@example.test", "b@example.test"], url=database_url)
    with issue.store.session() as session:
        session.execute(update(IssueRow).values(sent_at=utcnow() - timedelta(days=400)))
    assert ledger.prune(issue.store, timedelta(days=180)) == ledger.Pruned(0, 0)
    assert len(issue.statuses()) == 2


@pytest.mark.parametrize("fresh", [False, True])
def test_the_claim_reads_an_index_of_the_issues_queue(database_url: str, fresh: bool) -> None:
    issue = queued_issue(None, [f"r{n}@example.test" for n in range(30)], url=database_url)
    with issue.store.engine.begin() as connection:
        if fresh:
            connection.exec_driver_sql("ANALYZE")
        compiled = ledger._claimable().compile(dialect=connection.dialect)
        params = compiled.construct_params(
            {"issue": issue.issue_id, "size": 5, "now": "2030-01-01 00:00:00.000000"}
        )
        if connection.dialect.name == "postgresql":
            plan = connection.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
        else:
            positional = tuple(params[name] for name in compiled.positiontup or ())
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional).all()
        # On this small table PostgreSQL may prefer a sequential scan; forbid it to see
        # which index it would take.
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = connection.exec_driver_sql(f"EXPLAIN {compiled}", params).all()
    shown = " ".join(str(row) for row in plan)
    if issue.store.engine.dialect.name == "postgresql":
        assert "ix_deliveries_queued" in shown and "Sort" not in shown
    else:  # either index gives the issue's queued rows in id order: no scan, no sort
        assert "SEARCH deliveries USING INDEX" in shown and "TEMP B-TREE" not in shown


def _plan(connection, statement, values: dict) -> str:
    """The database's plan for ``statement`` as it runs with ``values`` (the SQL and
    parameters the driver got, caught on the way and explained), as one string."""
    with caught_sql(connection) as ran:
        connection.execute(statement, values)
    sql, parameters = ran[-1]
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        rows = connection.exec_driver_sql(f"EXPLAIN {sql}", parameters).all()
    else:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
    return " ".join(str(row) for row in rows)


@pytest.mark.parametrize("statement", ["_held", "_renew", "_unclaim"])
def test_rows_a_worker_holds_are_found_by_key_alone(database_url: str, statement: str) -> None:
    # A status test in these per-batch statements once let PostgreSQL AND the primary
    # key with a bitmap of the whole queued-rows index (every issue's, and the dead
    # entries of settled rows): a cost that grew with the ledger's history.
    issue = queued_issue(None, [f"r{n}@example.test" for n in range(30)], url=database_url)
    with issue.store.session() as session:
        claimed = ledger.claim(session, issue.issue_id, "host:1", 10, 60)
    values = {
        "ids": [item.delivery_id for item in claimed],
        "worker": "host:1",
        "lease_end": utcnow(),
    }
    with issue.store.engine.begin() as connection:
        plan = _plan(connection, getattr(ledger, statement)(), values)
    assert "ix_deliveries_queued" not in plan and "ix_deliveries_issue_status" not in plan
    if connection.dialect.name == "postgresql":
        assert "deliveries_pkey" in plan
    else:
        assert "INTEGER PRIMARY KEY" in plan
