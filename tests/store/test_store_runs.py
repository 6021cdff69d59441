"""``digest.store.runs``: the slot guard, resumable slots and the history the CLI
prints, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from digest.store import Store, runs
from digest.store.status import RunStatus
from digest.store.tables import ArticleRow, DeliveryRow, IssueItemRow, IssueRow, utcnow
from digest.subscriptions import add

SLOT = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def test_a_slot_is_claimed_once_and_resumed_by_one_process(store: Store) -> None:
    assert runs.claim_slot(store, "weekly", SLOT, "a:1")
    assert not runs.claim_slot(store, "weekly", SLOT, "b:2")
    assert runs.claim_slot(store, "weekly", SLOT + timedelta(days=7), "b:2")
    # A running slot is taken over only from the owner named as gone.
    assert not runs.reclaim_slot(store, "weekly", SLOT, "b:2")
    assert not runs.reclaim_slot(store, "weekly", SLOT, "b:2", previous_owner="c:3")
    assert runs.reclaim_slot(store, "weekly", SLOT, "b:2", previous_owner="a:1")
    assert not runs.reclaim_slot(store, "weekly", SLOT, "c:3", previous_owner="a:1")
    runs.finish_slot(store, "weekly", SLOT, RunStatus.INTERRUPTED, "stopped", 4)
    assert runs.reclaim_slot(store, "weekly", SLOT, "c:3")
    assert not runs.reclaim_slot(store, "weekly", SLOT, "d:4")


def test_heartbeats_come_only_from_the_owner_and_show_in_unfinished(store: Store) -> None:
    runs.claim_slot(store, "weekly", SLOT, "a:1")
    (before,) = runs.unfinished(store)
    runs.beat_slot(store, "weekly", SLOT, "someone:else")
    assert runs.unfinished(store)[0].heartbeat_at == before.heartbeat_at
    runs.beat_slot(store, "weekly", SLOT, "a:1")
    (after,) = runs.unfinished(store)
    assert after.heartbeat_at > before.heartbeat_at
    assert (after.newsletter, after.slot, after.status, after.owner) == (
        "weekly",
        SLOT,
        RunStatus.RUNNING,
        "a:1",
    )
    runs.finish_slot(store, "weekly", SLOT, RunStatus.DONE, "sent", 1)
    assert runs.unfinished(store) == []


def test_missed_slots_are_recorded_once_and_the_last_run_is_reported(store: Store) -> None:
    assert runs.last_run(store, "weekly") is None
    runs.record_missed(store, "weekly", SLOT, "missed by 3h")
    runs.record_missed(store, "weekly", SLOT, "missed again")
    runs.claim_slot(store, "weekly", SLOT - timedelta(days=7), "a:1")
    last = runs.last_run(store, "weekly")
    assert last is not None
    assert (last.slot, last.status, last.message) == (SLOT, RunStatus.MISSED, "missed by 3h")
    assert last.finished_at is not None
    assert runs.unfinished(store)[0].slot == SLOT - timedelta(days=7)


def test_issue_history_counts_items_and_deliveries_per_issue(store: Store) -> None:
    ann, _ = add(store, "demo", "ann@example.org")
    bob, _ = add(store, "demo", "bob@example.org")
    with store.session() as session:
        issues = []
        for number in (1, 2, 3):
            issue = IssueRow(
                newsletter="weekly",
                number=number,
                issue_date=f"2026-03-0{number}",
                status="sent" if number < 3 else "sending",
                subject=f"Issue {number}",
                html="<p>",
                text="t",
            )
            session.add(issue)
            issues.append(issue)
        session.add(
            IssueRow(newsletter="other", number=1, issue_date="x", subject="s", html="", text="")
        )
        articles = [ArticleRow(url=f"https://example.org/{n}", headline=f"A{n}") for n in (1, 2)]
        session.add_all(articles)
        session.flush()
        session.add_all(
            [
                *(
                    IssueItemRow(
                        issue_id=issues[1].id, article_id=a.id, position=n, title=a.headline
                    )
                    for n, a in enumerate(articles)
                ),
                DeliveryRow(
                    issue_id=issues[0].id, subscriber_id=ann.id, email=ann.email, status="sent"
                ),
                DeliveryRow(
                    issue_id=issues[0].id, subscriber_id=bob.id, email=bob.email, status="failed"
                ),
                DeliveryRow(
                    issue_id=issues[2].id, subscriber_id=ann.id, email=ann.email, status="queued"
                ),
            ]
        )
    history = runs.issue_history(store, "weekly")
    assert [(i.number, i.status, i.items) for i in history] == [
        (3, "sending", 0),
        (2, "sent", 2),
        (1, "sent", 0),
    ]
    assert [i.deliveries for i in history] == [{"queued": 1}, {}, {"sent": 1, "failed": 1}]
    (latest,) = runs.issue_history(store, "weekly", limit=1)
    assert latest.number == 3 and latest.created_at <= utcnow()
    assert runs.issue_history(store, "nobody") == []
