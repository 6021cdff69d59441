"""The ledger's own functions on SQLite and PostgreSQL: queueing, claiming, settling
each outcome, backoff, releasing claims of dead and live holders, finishing an issue."""

from __future__ import annotations

import socket
from datetime import timedelta

from sqlalchemy import delete, select, update

from digest.store import ledger
from digest.store.ledger import Settlement
from digest.store.status import DeliveryStatus, IssueStatus
from digest.store.tables import DeliveryRow, IssueRow, SuppressionRow, utcnow
from tests.support.mailserver.issue import queued_issue

EMAILS = [f"r{n}@example.test" for n in range(5)]


def test_queue_takes_each_sendable_subscriber_once(database_url: str) -> None:
    issue = queued_issue(None, EMAILS, url=database_url)
    assert set(issue.statuses().values()) == {DeliveryStatus.QUEUED}
    with issue.store.session() as session:
        session.execute(delete(DeliveryRow).where(DeliveryRow.email == "r4@example.test"))
    issue.set_status("r4@example.test", "unsubscribed")
    with issue.store.session() as session:
        ledger.queue(session, issue.issue_id, "news")
    assert "r4@example.test" not in issue.statuses()  # not sendable
    issue.set_status("r4@example.test", "active")
    issue.set_status("r0@example.test", "unsubscribed")  # already has its row
    with issue.store.session() as session:
        ledger.queue(session, issue.issue_id, "news")
    assert sorted(issue.statuses()) == EMAILS  # r4 once more, nobody twice


def test_two_workers_claim_disjoint_batches_and_see_who_is_blocked(database_url: str) -> None:
    issue = queued_issue(None, EMAILS, url=database_url)
    issue.set_status("r1@example.test", "unsubscribed")  # after queueing
    with issue.store.session() as session:
        mine = ledger.claim(session, issue.issue_id, "host-a:1", 3, 60)
    with issue.store.session() as session:
        theirs = ledger.claim(session, issue.issue_id, "host-b:1", 3, 60)
    assert [c.subscriber.email for c in mine] == EMAILS[:3]
    assert [c.subscriber.email for c in theirs] == EMAILS[3:]
    assert [c.status for c in mine] == ["active", "unsubscribed", "active"]
    assert ledger.queued(issue.store, issue.issue_id, "host-a:1") == ledger.Queued(5, 3, None)
    with issue.store.session() as session:
        assert ledger.claim(session, issue.issue_id, "host-c:1", 3, 60) == []


def test_settling_records_each_outcome_and_frees_the_claim(database_url: str) -> None:
    issue = queued_issue(None, EMAILS[:4], url=database_url)
    with issue.store.session() as session:
        claimed = ledger.claim(session, issue.issue_id, "w:1", 4, 60)
    later = utcnow() + timedelta(minutes=5)
    sent, retry, failed, skipped = (c.delivery_id for c in claimed)
    ledger.settle(
        issue.store,
        [
            Settlement(sent, DeliveryStatus.SENT, 1, provider_id="<id-1@provider>"),
            Settlement(retry, DeliveryStatus.TRANSIENT, 1, "421 try later", not_before=later),
            Settlement(failed, DeliveryStatus.FAILED, 1, "550 no such user"),
            Settlement(skipped, DeliveryStatus.SKIPPED, 0, "unsubscribed"),
        ],
        bounced=[("r2@example.test", "550 no such user")],
        source="smtp",
        worker="w:1",
    )
    rows = issue.rows()
    assert {email: row.status for email, row in rows.items()} == {
        "r0@example.test": "sent",
        "r1@example.test": "queued",
        "r2@example.test": "failed",
        "r3@example.test": "skipped",
    }
    assert rows["r0@example.test"].provider_id == "<id-1@provider>"
    assert rows["r1@example.test"].error == "421 try later"
    assert rows["r1@example.test"].not_before == later
    assert all(row.claimed_by == "" and row.lease_until is None for row in rows.values())
    assert issue.subscriber_status("r2@example.test") == "bounced"
    with issue.store.session() as session:
        assert session.scalar(select(SuppressionRow.source)) == "send:smtp"
    # The retry waits for its backoff: nobody may claim it yet, and the wait is known.
    with issue.store.session() as session:
        assert ledger.claim(session, issue.issue_id, "w:1", 4, 60) == []
    waiting = ledger.queued(issue.store, issue.issue_id, "w:1")
    assert (waiting.total, waiting.held) == (1, 0)
    assert waiting.not_before is not None
    assert abs(waiting.not_before - later) < timedelta(seconds=1)


def test_claims_of_dead_processes_on_this_host_are_released(database_url: str) -> None:
    issue = queued_issue(None, EMAILS[:4], url=database_url)
    host = socket.gethostname()
    me = f"{host}:1"  # as this worker calls itself
    holders = {
        "r0@example.test": f"{host}:999999999",  # no such process
        "r1@example.test": "elsewhere:999999999",  # another host: its lease decides
        "r2@example.test": me,
    }
    with issue.store.session() as session:
        for email, holder in holders.items():
            session.execute(
                update(DeliveryRow).where(DeliveryRow.email == email).values(claimed_by=holder)
            )
    assert ledger.release_dead(issue.store, issue.issue_id, me) == 1
    claimed = {email: row.claimed_by for email, row in issue.rows().items()}
    assert claimed == {**holders, "r0@example.test": "", "r3@example.test": ""}
    assert ledger.release(issue.store, issue.issue_id, me) == 1
    assert issue.rows()["r2@example.test"].claimed_by == ""


def test_an_issue_is_finished_only_when_nothing_is_queued(database_url: str) -> None:
    issue = queued_issue(None, EMAILS[:2], url=database_url)
    assert ledger.count_queued(issue.store, issue.issue_id) == 2
    assert not ledger.finish(issue.store, issue.issue_id)
    assert issue.issue_status() == IssueStatus.SENDING
    _, claimed = ledger.settle_and_claim(issue.store, issue.issue_id, "w:1", 2, 60)
    ledger.settle(
        issue.store,
        [Settlement(c.delivery_id, DeliveryStatus.SENT, 1) for c in claimed],
        worker="w:1",
    )
    assert ledger.count_queued(issue.store, issue.issue_id) == 0
    assert ledger.finish(issue.store, issue.issue_id)
    with issue.store.session() as session:
        row = session.get(IssueRow, issue.issue_id)
        assert row is not None and row.status == IssueStatus.SENT and row.sent_at is not None
