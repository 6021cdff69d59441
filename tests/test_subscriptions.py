"""The subscriptions service: each status change writes exactly one history row with
its source and detail, and the rules (sticky statuses, suppression, replays) hold on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from digest import subscriptions
from digest.errors import SubscriberError
from digest.store import Store
from digest.store import subscribers as rows
from digest.store.status import SubscriberStatus as Status
from digest.store.tables import SubscriberRow, utcnow
from digest.subscribers_csv import import_csv
from digest.subscriptions import Confirmation

History = list[tuple[str, str, str, str]]


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def history(store: Store, address: str, list_name: str = "demo") -> History:
    """``(previous, status, source, detail)`` of every change of ``address``, oldest first."""
    with store.session() as session:
        record = rows.find(session, list_name, subscriptions.email_key(address))
        assert record is not None
        return [
            (e.previous, e.status, e.source, e.detail) for e in rows.history(session, record.id)
        ]


def status(store: Store, address: str, list_name: str = "demo") -> str:
    with store.session() as session:
        record = rows.find(session, list_name, subscriptions.email_key(address))
        assert record is not None
        return record.status


def test_the_double_opt_in_path_writes_one_row_per_change(store: Store) -> None:
    asked = subscriptions.request(store, "demo", "ann@example.org", "Ann", "from 192.0.2.1")
    assert asked is not None and (asked.email, asked.name, asked.list) == (
        "ann@example.org",
        "Ann",
        "demo",
    )
    assert history(store, "ann@example.org") == [("", "pending", "form", "from 192.0.2.1")]
    # Asking again while pending renews the link but changes no status.
    again = subscriptions.request(store, "demo", "ann@example.org", "", "from 192.0.2.2")
    assert again is not None and again.id == asked.id and again.name == "Ann"
    assert len(history(store, "ann@example.org")) == 1

    assert subscriptions.confirm(store, asked.id) is Confirmation.CONFIRMED
    assert subscriptions.confirm(store, asked.id) is Confirmation.ALREADY
    after = subscriptions.unsubscribe(store, asked.id, "one-click")
    assert after.status == Status.UNSUBSCRIBED
    subscriptions.unsubscribe(store, asked.id, "one-click")
    assert subscriptions.request(store, "demo", "ann@example.org", "", "from 192.0.2.3")
    assert history(store, "ann@example.org")[1:] == [
        ("pending", "active", "confirm", ""),
        ("active", "unsubscribed", "one-click", ""),
        # Asking to come back is recorded; the unsubscribe stands until the link is followed.
        ("unsubscribed", "unsubscribed", "form", "from 192.0.2.3"),
    ]


def test_an_active_subscriber_asking_again_gets_no_mail(store: Store) -> None:
    subscriptions.add(store, "demo", "ann@example.org")
    assert subscriptions.request(store, "demo", "ann@example.org", "", "from 192.0.2.1") is None
    assert history(store, "ann@example.org") == [("", "active", "cli", "")]


def test_a_suppressed_address_is_never_added_by_the_form(store: Store) -> None:
    with store.session() as session:
        assert subscriptions.suppress(session, "Gone@Example.org", "manual", "cli")
    assert subscriptions.request(store, "demo", "Gone@example.org", "", "from x") is None
    with store.session() as session:
        assert rows.find(session, "demo", "Gone@example.org") is None


def test_confirmation_links_expire_and_stop_working_once_suppressed(store: Store) -> None:
    old = subscriptions.request(store, "demo", "old@example.org", "", "from x")
    fresh = subscriptions.request(store, "demo", "fresh@example.org", "", "from x")
    assert old is not None and fresh is not None
    with store.session() as session:
        session.execute(
            update(SubscriberRow)
            .where(SubscriberRow.id == old.id)
            .values(updated_at=utcnow() - subscriptions.CONFIRM_FOR - timedelta(minutes=1))
        )
        subscriptions.suppress(session, "fresh@example.org", "manual", "cli")
    assert subscriptions.confirm(store, old.id) is Confirmation.EXPIRED
    assert subscriptions.confirm(store, fresh.id) is Confirmation.NOT_CURRENT
    assert status(store, "old@example.org") == status(store, "fresh@example.org") == "pending"


def test_bounces_and_complaints_on_every_list_with_their_detail(store: Store) -> None:
    subscriptions.add(store, "demo", "b@example.org")
    subscriptions.add(store, "other", "b@example.org", status="pending")
    with store.session() as session:
        assert subscriptions.bounce(session, "b@example.org", "soft", "webhook:ses", "full") == (
            "counted"
        )
        assert subscriptions.bounce(session, "b@example.org", "hard", "send:smtp", "550 5.1.1")
        assert (
            subscriptions.bounce(session, "b@example.org", "complaint", "webhook:ses", "abuse")
            == "already suppressed"
        )
        assert (
            subscriptions.bounce(session, "b@example.org", "hard", "webhook:ses", "again")
            == "already suppressed"
        )
    for list_name, first in (("demo", "active"), ("other", "pending")):
        assert history(store, "b@example.org", list_name)[1:] == [
            (first, "bounced", "send", "550 5.1.1"),
            ("bounced", "complained", "webhook", "abuse"),
        ]
    # An unsubscription never hides a complaint.
    with store.session() as session:
        record = rows.find(session, "demo", "b@example.org")
        assert record is not None
        assert not subscriptions.leave(session, record, "cli")


def test_add_and_import_keep_a_sticky_status_and_record_the_file(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,name\nann@example.org,Ann\nbob@example.org,Bob\n", encoding="utf-8")
    import_csv(store, "demo", path, status="pending")
    subscriptions.add(store, "demo", "bob@example.org")
    with store.session() as session:
        record = rows.find(session, "demo", "ann@example.org")
        assert record is not None
        assert subscriptions.leave(session, record, "preferences", "unsubscribe from all")
    report = import_csv(store, "demo", path)
    assert (report.kept_status, report.unchanged, report.updated) == (1, 2, 0)
    subscriptions.add(store, "demo", "ann@example.org", name="Ann B")
    assert history(store, "ann@example.org") == [
        ("", "pending", "import", "list.csv"),
        ("pending", "unsubscribed", "preferences", "unsubscribe from all"),
    ]
    assert history(store, "bob@example.org") == [
        ("", "pending", "import", "list.csv"),
        ("pending", "active", "cli", ""),
    ]


def test_resubscribing_needs_an_unsubscribed_and_unsuppressed_address(store: Store) -> None:
    ann, _ = subscriptions.add(store, "demo", "ann@example.org")
    assert not subscriptions.resubscribe(store, ann.id, "preferences")
    assert subscriptions.unsubscribe_everywhere(store, "ann@example.org", "preferences") == 1
    with store.session() as session:
        subscriptions.suppress(session, "ann@example.org", "manual", "cli")
    assert not subscriptions.resubscribe(store, ann.id, "preferences")
    with store.session() as session:
        assert subscriptions.unsuppress(session, "ann@example.org")
    assert subscriptions.resubscribe(store, ann.id, "preferences", "subscribed again")
    assert history(store, "ann@example.org")[-1] == (
        "unsubscribed",
        "active",
        "preferences",
        "subscribed again",
    )


def test_unknown_sources_statuses_and_new_statuses_are_refused(store: Store) -> None:
    ann, _ = subscriptions.add(store, "demo", "ann@example.org")
    with store.session() as session:
        record = rows.get(session, ann.id)
        assert record is not None
        with pytest.raises(ValueError, match="source"):
            subscriptions.change(session, record, Status.ACTIVE, "carrier-pigeon")
        with pytest.raises(ValueError):
            # On purpose a status outside SubscriberStatus: the run-time check must refuse it.
            subscriptions.change(session, record, "gone", "cli")  # type: ignore[arg-type]
    with pytest.raises(SubscriberError, match="use active or pending"):
        subscriptions.add(store, "demo", "bob@example.org", status="bounced")


def test_a_replayed_webhook_changes_nothing(store: Store) -> None:
    subscriptions.add(store, "demo", "s@example.org")
    events = [("s@example.org", "soft", "mailbox full")]
    first = subscriptions.apply_provider_events(store, "mailgun", ["token-1"], events, soft_limit=2)
    assert first == subscriptions.ProviderEvents(("counted",))
    replay = subscriptions.apply_provider_events(
        store, "mailgun", ["token-1", "token-2"], events, soft_limit=2
    )
    assert replay.replay_of == "token-1" and replay.outcomes == ()
    with store.session() as session:
        assert rows.soft_bounces(session, "s@example.org") == 1
    # The same id from another provider is another event.
    other = subscriptions.apply_provider_events(store, "ses", ["token-1"], events, soft_limit=2)
    assert other.outcomes == ("suppressed",)
    assert history(store, "s@example.org")[-1] == (
        "active",
        "bounced",
        "webhook",
        "2 soft bounces; mailbox full",
    )
