"""Trust in the subscriber list: a choice to leave stands until the person confirms again,
letter case never makes a second person, and an export is safe to open in a
spreadsheet. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text, update

from digest import subscriptions
from digest.store import Store, alembic_config, subscriber_import
from digest.store import subscribers as rows
from digest.store.status import SubscriberStatus as Status
from digest.store.tables import SubscriberEventRow, SubscriberRow, utcnow
from digest.subscribers import count_active, record_bounce, remove_subscriber, suppress
from digest.subscribers_csv import export_csv, import_csv
from digest.subscriptions import Confirmation


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    yield store
    store.close()


def record(store: Store, address: str, list_name: str = "demo") -> rows.SubscriberRecord:
    with store.session() as session:
        found = rows.find(session, list_name, subscriptions.email_key(address))
        assert found is not None
        return found


def csv_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def count_rows(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(SubscriberRow)) or 0


# -- item 5: an unsubscribe stands until the person confirms again -----------------------


def test_a_form_post_and_an_import_never_undo_an_unsubscribe(store: Store, tmp_path: Path) -> None:
    subscriptions.add(store, "demo", "ann@example.org")
    remove_subscriber(store, "demo", "ann@example.org")
    # Anyone may post the form for the address: a link goes to the mailbox ...
    asked = subscriptions.request(store, "demo", "ann@example.org", "", "from 192.0.2.9")
    assert asked is not None
    # ... but until it is followed, the unsubscribe stands, whatever the operator imports.
    assert record(store, "ann@example.org").status == Status.UNSUBSCRIBED
    report = import_csv(store, "demo", csv_file(tmp_path / "a.csv", "email\nann@example.org\n"))
    assert report.kept_status == 1
    assert record(store, "ann@example.org").status == Status.UNSUBSCRIBED
    with store.session() as session:
        assert count_active(session, "demo") == 0
    # The person follows the link: they are back.
    assert subscriptions.confirm(store, asked.id) is Confirmation.CONFIRMED
    assert record(store, "ann@example.org").status == Status.ACTIVE
    with store.session() as session:
        events = rows.history(session, asked.id)
    assert [(e.previous, e.status, e.source) for e in events] == [
        ("", "active", "cli"),
        ("active", "unsubscribed", "cli"),
        ("unsubscribed", "unsubscribed", "form"),
        ("unsubscribed", "active", "confirm"),
    ]


def test_an_unsubscribed_address_comes_back_only_through_a_fresh_request(store: Store) -> None:
    subscriptions.add(store, "demo", "ann@example.org")
    ann = record(store, "ann@example.org")
    subscriptions.unsubscribe(store, ann.id, "one-click")
    # An old confirmation link (from the first sign-up) does not undo the unsubscribe.
    assert subscriptions.confirm(store, ann.id) is Confirmation.NOT_CURRENT
    assert subscriptions.request(store, "demo", "ann@example.org", "", "from 192.0.2.9")
    with store.session() as session:  # the request is eight days old
        session.execute(
            update(SubscriberEventRow)
            .where(SubscriberEventRow.subscriber_id == ann.id, SubscriberEventRow.source == "form")
            .values(created_at=utcnow() - timedelta(days=8))
        )
    assert subscriptions.confirm(store, ann.id) is Confirmation.EXPIRED
    assert record(store, "ann@example.org").status == Status.UNSUBSCRIBED


def test_bounced_and_complained_addresses_stay_so_through_form_and_import(
    store: Store, tmp_path: Path
) -> None:
    for address in ("b@example.org", "c@example.org"):
        subscriptions.add(store, "demo", address)
    with store.session() as session:
        record_bounce(session, "b@example.org", "hard", "webhook:postmark")
        record_bounce(session, "c@example.org", "complaint", "webhook:postmark")
    for address in ("b@example.org", "c@example.org"):
        assert subscriptions.request(store, "demo", address, "", "from 192.0.2.9") is None
    import_csv(store, "demo", csv_file(tmp_path / "a.csv", "email\nb@example.org\nc@example.org\n"))
    assert record(store, "b@example.org").status == Status.BOUNCED
    assert record(store, "c@example.org").status == Status.COMPLAINED


def test_a_pending_row_left_by_an_older_version_after_an_unsubscribe_is_not_activated_by_import(
    store: Store, tmp_path: Path
) -> None:
    # Before this rule, the form set an unsubscribed address pending.
    subscriptions.add(store, "demo", "ann@example.org")
    ann = record(store, "ann@example.org")
    subscriptions.unsubscribe(store, ann.id, "one-click")
    with store.session() as session:
        subscriptions.change(session, record(store, "ann@example.org"), Status.PENDING, "form")
    report = import_csv(store, "demo", csv_file(tmp_path / "a.csv", "email\nann@example.org\n"))
    assert report.kept_status == 1
    assert record(store, "ann@example.org").status == Status.PENDING
    assert subscriptions.confirm(store, ann.id) is Confirmation.CONFIRMED


# -- item 6: letter case never makes a second person ------------------------------------


def test_the_key_ignores_letter_case_and_the_address_keeps_it() -> None:
    assert subscriptions.normalize_email(" Ann.Lee@Example.ORG ") == (
        "Ann.Lee@example.org",
        "ann.lee@example.org",
    )
    assert subscriptions.email_key("ANN@Example.org") == "ann@example.org"


def test_a_capital_letter_does_not_undo_an_unsubscribe(store: Store, tmp_path: Path) -> None:
    subscriptions.add(store, "demo", "ann@example.org")
    remove_subscriber(store, "demo", "ann@example.org")
    report = import_csv(store, "demo", csv_file(tmp_path / "a.csv", "email\nAnn@Example.org\n"))
    assert (report.added, report.kept_status) == (0, 1)
    assert count_rows(store) == 1
    assert record(store, "ANN@example.org").status == Status.UNSUBSCRIBED
    assert record(store, "ann@example.org").email == "ann@example.org"
    added, created = subscriptions.add(store, "demo", "ANN@example.org")
    assert added.email == "ann@example.org"
    assert not created and count_rows(store) == 1


def test_suppression_bounces_and_complaints_ignore_letter_case(store: Store) -> None:
    subscriptions.add(store, "demo", "Ann@example.org", name="Ann")
    subscriptions.add(store, "demo", "bob@example.org")
    with store.session() as session:
        suppress(session, "ANN@EXAMPLE.ORG", "complaint", "webhook:ses")
        for _ in range(3):
            record_bounce(session, "BOB@example.org", "soft", "webhook:ses", soft_limit=3)
    assert record(store, "ann@example.org").status == Status.COMPLAINED
    assert record(store, "ann@example.org").email == "Ann@example.org"
    assert record(store, "bob@example.org").status == Status.BOUNCED
    assert subscriptions.request(store, "demo", "aNN@example.org", "", "from 192.0.2.9") is None
    assert count_rows(store) == 2


def test_the_form_and_unsubscribe_everywhere_find_the_person_whatever_the_case(
    store: Store,
) -> None:
    subscriptions.add(store, "one", "Ann@example.org")
    subscriptions.add(store, "two", "ann@EXAMPLE.org")
    assert count_rows(store) == 2  # one person on two lists
    assert subscriptions.unsubscribe_everywhere(store, "ANN@example.org", "preferences") == 2
    asked = subscriptions.request(store, "one", "aNn@example.org", "", "from 192.0.2.9")
    assert asked is not None and asked.email == "Ann@example.org"
    assert count_rows(store) == 2


def _at_0009(url: str) -> Store:
    store = Store(url, migrate=False)
    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
    return store


def test_the_migration_merges_rows_that_differ_only_in_case(database_url: str) -> None:
    old = _at_0009(database_url)
    now = utcnow()
    with old.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO lists (id, name, created_at) VALUES (1, 'demo', :now),"
                " (2, 'other', :now)"
            ),
            {"now": now},
        )
        people = [
            # id, list, email, status: Ann left, then came back with a capital letter
            (1, 1, "ann@example.org", "unsubscribed"),
            (2, 1, "Ann@example.org", "active"),
            (3, 1, "Bob@example.org", "active"),
            (4, 1, "bob@example.org", "pending"),
            (5, 2, "Ann@example.org", "active"),
            (6, 1, "Zoë@Example.org", "active"),
        ]
        for sid, list_id, email, status in people:
            local, _, domain = email.rpartition("@")
            connection.execute(
                text(
                    "INSERT INTO subscribers (id, list_id, email, email_key, name, status,"
                    " status_source, attributes, created_at, updated_at) VALUES (:id, :list,"
                    " :email, :key, '', :status, 'import', '{}', :now, :now)"
                ),
                {
                    "id": sid,
                    "list": list_id,
                    "email": email,
                    "key": f"{local}@{domain.lower()}",
                    "status": status,
                    "now": now,
                },
            )
            connection.execute(
                text(
                    "INSERT INTO subscriber_events (subscriber_id, status, previous, source,"
                    " detail, created_at) VALUES (:id, :status, '', 'import', '', :now)"
                ),
                {"id": sid, "status": status, "now": now},
            )
        connection.execute(
            text(
                "INSERT INTO suppressions (email_key, reason, source, detail, created_at) VALUES"
                " ('Carl@example.org', 'manual', 'cli', '', :now),"
                " ('carl@example.org', 'complaint', 'webhook', '', :now)"
            ),
            {"now": now},
        )
        connection.execute(
            text(
                "INSERT INTO soft_bounces (email_key, count, last_at) VALUES"
                " ('Dan@example.org', 1, :now), ('dan@example.org', 1, :now)"
            ),
            {"now": now},
        )
    old.close()
    store = Store(database_url)
    try:
        with store.session() as session:
            remaining = session.execute(
                select(SubscriberRow.id, SubscriberRow.email_key, SubscriberRow.status).order_by(
                    SubscriberRow.id
                )
            ).all()
            assert remaining == [
                (1, "ann@example.org", "unsubscribed"),
                (3, "bob@example.org", "active"),
                (5, "ann@example.org", "active"),
                (6, "zoë@example.org", "active"),
            ]
            ann = rows.history(session, 1)
            assert [(e.status, e.source) for e in ann] == [
                ("unsubscribed", "import"),
                ("active", "import"),  # the merged row's history comes along
                ("unsubscribed", "migration"),
            ]
            assert "Ann@example.org" in ann[-1].detail and "letter case" in ann[-1].detail
            suppression = rows.suppression(session, "carl@example.org")
            assert suppression is not None and suppression.reason == "complaint"
            assert rows.soft_bounces(session, "dan@example.org") == 2
            assert count_active(session, "demo") == 2
    finally:
        store.close()


# -- item 9: an export is safe to open in a spreadsheet ------------------------------------

FORMULAS = ['=HYPERLINK("http://evil.example")', "+SUM(1+1)", "-2+3", "@cmd", "\tTab", "\rCR"]


def test_export_neutralises_formulas_and_keeps_the_stored_values(
    store: Store, tmp_path: Path
) -> None:
    for number, name in enumerate(FORMULAS):
        subscriptions.add(store, "demo", f"r{number}@example.org", name=name)
    subscriptions.add(store, "demo", "-dash@example.org", name="'Tis me")
    with store.session() as session:
        subscriber_import.update_many(
            session,
            [{"id": record(store, "r0@example.org").id, "attributes": {"=cmd": "@SUM(A1)"}}],
        )
    out = io.StringIO()
    export_csv(store, "demo", out)
    exported = list(csv.DictReader(io.StringIO(out.getvalue())))
    cells = [value for row in exported for value in row.values()] + list(exported[0])
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    names = {row["email"]: row["name"] for row in exported}
    assert names["r0@example.org"] == "'" + FORMULAS[0]
    assert names["'-dash@example.org"] == "'Tis me"
    assert exported[0]["'=cmd"] == "'@SUM(A1)"
    # Stored values are untouched, and the file imports back to the same values.
    assert record(store, "r1@example.org").name == "+SUM(1+1)"
    again = import_csv(store, "copy", csv_file(tmp_path / "export.csv", out.getvalue()))
    assert again.added == len(FORMULAS) + 1 and not again.problems
    for number, name in enumerate(FORMULAS):  # (an import strips names, as always)
        assert record(store, f"r{number}@example.org", "copy").name == name.strip()
    assert record(store, "-dash@example.org", "copy").name == "'Tis me"
    assert dict(record(store, "r0@example.org", "copy").attributes) == {"=cmd": "@SUM(A1)"}
    assert dict(record(store, "r1@example.org", "copy").attributes) == {"=cmd": ""}
