"""``digest.store.subscribers``, ``webhook_events`` and ``archive`` on SQLite and
PostgreSQL: what they write, the frozen values they return, and the duplicate id a
concurrent webhook transaction recorded first."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from datetime import timedelta

import pytest

from digest.errors import SubscriberError
from digest.store import Store, archive, webhook_events
from digest.store import subscribers as rows
from digest.store.status import SubscriberStatus as Status
from digest.store.tables import IssueRow, utcnow


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def _create(store: Store, email: str, list_name: str = "demo", status: Status = Status.ACTIVE):
    with store.session() as session:
        return rows.create(
            session, list_name, email, email, name="", status=status, source="cli", now=utcnow()
        )


def test_create_and_write_status_keep_the_row_and_its_history_together(store: Store) -> None:
    record = _create(store, "ann@example.org")
    assert (record.list_name, record.status, record.status_source) == ("demo", "active", "cli")
    with pytest.raises(FrozenInstanceError):
        record.status = "x"
    with store.session() as session:
        rows.write_status(
            session, record.id, record.status, Status.BOUNCED, "webhook", "550", utcnow()
        )
    with store.session() as session:
        after = rows.get(session, record.id, "demo")
        assert after is not None and (after.status, after.status_source) == ("bounced", "webhook")
        assert rows.get(session, record.id, "other") is None
        assert [(e.previous, e.status, e.detail) for e in rows.history(session, record.id)] == [
            ("", "active", ""),
            ("active", "bounced", "550"),
        ]
        rows.forget(session, record.id)
    with store.session() as session:
        assert rows.get(session, record.id) is None
        assert rows.history(session, record.id) == ()


def test_counts_suppression_and_who_is_blocked(store: Store) -> None:
    ann = _create(store, "ann@example.org")
    bob = _create(store, "bob@example.org")
    cat = _create(store, "cat@example.org", status=Status.PENDING)
    _create(store, "bob@example.org", "other")
    with store.session() as session:
        assert rows.add_suppression(session, "bob@example.org", "manual", "cli", "", utcnow())
        assert not rows.add_suppression(session, "bob@example.org", "manual", "cli", "", utcnow())
        rows.set_preferences(session, ann.id, sections=["World"], pause_weeks=2)
    with store.session() as session:
        counts = rows.status_counts(session, "demo")
        assert counts == {
            "pending": 1,
            "active": 2,
            "unsubscribed": 0,
            "bounced": 0,
            "complained": 0,
            "suppressed": 1,
            "paused": 1,
        }
        assert rows.blocked_subscribers(session, [ann, bob, cat]) == {
            ann.id: "paused",
            bob.id: "suppressed",
            cat.id: "pending",
        }
        assert rows.count_active(session, "demo") == 0
        assert rows.section_preferences(session, "demo") == {ann.id: frozenset({"World"})}
        assert rows.remove_suppression(session, "bob@example.org")
        assert not rows.remove_suppression(session, "bob@example.org")
        assert rows.count_active(session, "other") == 1
        with pytest.raises(SubscriberError, match="no list 'nope'"):
            rows.require_list(session, "nope")


def test_a_webhook_id_recorded_by_another_transaction_is_a_duplicate(store: Store) -> None:
    long_ago = utcnow() - timedelta(days=60)
    with store.session() as session:
        assert webhook_events.record(session, "mailgun", ["t1", "t1"], forget_before=long_ago)
    with store.session() as session:
        assert webhook_events.first_seen(session, "mailgun", ["t0", "t1"]) == "t1"
        assert webhook_events.first_seen(session, "ses", ["t1"]) is None
    # A transaction that checked before the other one committed finds out on insert.
    with pytest.raises(_RolledBack), store.session() as session:
        assert not webhook_events.record(session, "mailgun", ["t1"], forget_before=long_ago)
        raise _RolledBack
    # Ids older than ``forget_before`` are forgotten.
    with store.session() as session:
        assert webhook_events.record(session, "ses", ["x"], forget_before=utcnow())
        assert webhook_events.first_seen(session, "mailgun", ["t1"]) is None


class _RolledBack(Exception):
    pass


def test_the_archive_reads_only_public_issues(store: Store) -> None:
    with store.session() as session:
        for number, status in ((1, "sent"), (2, "sending"), (3, "building")):
            session.add(
                IssueRow(
                    newsletter="weekly",
                    number=number,
                    issue_date="2026-03-02",
                    status=status,
                    subject=f"#{number}",
                    html=f"<p>{number} SLOT</p>",
                    text="",
                    slots={"greeting": "SLOT"},
                )
            )
    assert [i.number for i in archive.public_issues(store, "weekly")] == [2, 1]
    issue = archive.public_issue(store, "weekly", 1)
    assert issue is not None and (issue.html, issue.slots) == (
        "<p>1 SLOT</p>",
        (("greeting", "SLOT"),),
    )
    assert archive.public_issue(store, "weekly", 3) is None
