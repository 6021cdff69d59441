"""Claims carry a heartbeat: a batch slower than the lease is never claimed twice, a
dead holder's rows are free once its lease runs out, a settlement counts only for the
rows its worker still holds, and the progress never exceeds the recipients."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from sqlalchemy import update

from digest.dispatch import SendOptions, SendProgress, send_issue
from digest.store import ledger
from digest.store.ledger import Settlement
from digest.store.status import DeliveryStatus
from digest.store.tables import DeliveryRow, utcnow
from tests.support import emails
from tests.support.mailserver.issue import queued_issue
from tests.support.recorder import Recorder

SHORT_LEASE = 0.4


async def test_a_batch_slower_than_the_lease_is_never_claimed_by_another_run(
    database_url: str,
) -> None:
    issue = queued_issue(None, emails(12), url=database_url)
    backend = Recorder(connections=2)
    backend.pause = 3 * SHORT_LEASE  # every batch outlives the lease several times over
    seen: list[tuple[int, int]] = []

    def progress(snapshot: SendProgress) -> None:
        seen.append((snapshot.settled, 12))

    reports = await asyncio.gather(
        *(
            send_issue(
                issue.store,
                issue.issue_id,
                issue.factory,
                backend,
                options=SendOptions(lease=SHORT_LEASE, batch_size=3, worker=f"run-{n}:1"),
                progress=progress,
            )
            for n in range(2)
        )
    )
    assert backend.delivered == Counter({e: 1 for e in emails(12)})
    assert sum(report.sent for report in reports) == 12
    assert all(settled <= total for settled, total in seen)
    assert set(issue.statuses().values()) == {DeliveryStatus.SENT}


def test_renewing_keeps_rows_from_others_and_a_dead_holders_lapse(database_url: str) -> None:
    issue = queued_issue(None, emails(4), url=database_url)
    with issue.store.session() as session:
        mine = ledger.claim(session, issue.issue_id, "alive:1", 2, 60)
        gone = ledger.claim(session, issue.issue_id, "dead:1", 2, 60)
    past = utcnow() - timedelta(seconds=1)
    with issue.store.session() as session:  # both leases ran out ...
        session.execute(update(DeliveryRow).values(lease_until=past))
    # ... but the live holder's heartbeat renews its own.
    ids = [c.delivery_id for c in mine]
    assert ledger.renew(issue.store, "alive:1", [*ids, gone[0].delivery_id], 60) == 2
    with issue.store.session() as session:
        taken = ledger.claim(session, issue.issue_id, "other:1", 4, 60)
    assert sorted(c.delivery_id for c in taken) == sorted(c.delivery_id for c in gone)


def test_a_settlement_counts_only_for_rows_the_worker_still_holds(database_url: str) -> None:
    issue = queued_issue(None, emails(2), url=database_url)
    with issue.store.session() as session:
        first = ledger.claim(session, issue.issue_id, "slow:1", 2, 60)
        session.execute(update(DeliveryRow).values(lease_until=utcnow() - timedelta(seconds=1)))
    _, second = ledger.settle_and_claim(issue.store, issue.issue_id, "fast:1", 2, 60)
    assert len(second) == 2  # the slow one stopped renewing: its rows were free
    done = [Settlement(c.delivery_id, DeliveryStatus.SENT, 1) for c in second]
    assert ledger.settle(issue.store, done, worker="fast:1") == done
    late = [Settlement(c.delivery_id, DeliveryStatus.FAILED, 1, "late") for c in first]
    assert ledger.settle(issue.store, late, worker="slow:1") == []
    assert set(issue.statuses().values()) == {DeliveryStatus.SENT}
