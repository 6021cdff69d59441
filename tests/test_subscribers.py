"""Subscriber lists: addresses, CSV import (bad input reported, good rows kept),
statuses with their history, the global suppression list, and who a run sends to."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.cli import main
from digest.config import load_config
from digest.errors import SubscriberError
from digest.store import Store
from digest.store import subscribers as rows
from digest.store.status import SubscriberStatus
from digest.store.tables import SubscriberRow
from digest.subscribers import (
    add_subscriber,
    blocked_subscribers,
    count_active,
    export_csv,
    import_csv,
    list_subscribers,
    normalize_email,
    record_bounce,
    remove_subscriber,
    status_counts,
    suppress,
    unsuppress,
)
from digest.subscriptions import change
from tests.support import write
from tests.support.subscribers import (
    SECRET,
    demo_project,
    events_of,
    recipients,
    run,
    status_of,
)

SECOND_NEWSLETTER = """\
  evening:
    title: The Evening Note
    from: The Evening Note <evening@example.org>
    sources:
      - feed: examples/site/feed.xml
    list: other
    backend: local
"""


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    yield store
    store.close()


def test_the_key_ignores_case_and_the_local_part_is_kept_for_display() -> None:
    assert normalize_email(" Ann.Lee@Example.ORG ") == (
        "Ann.Lee@example.org",
        "ann.lee@example.org",
    )
    assert normalize_email("ann.lee@example.org")[1] == normalize_email("Ann.Lee@example.org")[1]
    with pytest.raises(SubscriberError):
        normalize_email("two@@example.org")
    with pytest.raises(SubscriberError):
        normalize_email("a@example.org\r\nBcc: x@example.org")


def test_import_with_bom_keeps_good_rows_and_reports_bad_ones_by_line(
    tmp_path: Path, store: Store
) -> None:
    data = (
        (
            "\ufeffEmail,Name,City\n"  # BOM and a header in another case
            "ann@Example.org,Ann,Oslo\n"
            "not-an-address,Bad,Rome\n"
            "bob@example.org,Bob\n"  # a field short
            "\n"
            '"cy@example.org","Cy, Jr.",Lima\n'
            "ANN@example.org,Ann Upper,Bergen\n"  # the same person: the later row wins
        ).encode()
        + b"\xff\xfe@example.org,Broken,X\n"
        + b"dee@example.org,Dee,Riga\n"
    )
    report = import_csv(store, "demo", write(tmp_path / "people.csv", data))
    assert report.added == 3
    assert [p.split(":")[0] for p in report.problems] == [
        f"{tmp_path / 'people.csv'}, line 3",
        f"{tmp_path / 'people.csv'}, line 4",
        f"{tmp_path / 'people.csv'}, line 8",
    ]
    assert "not a valid address" in report.problems[0]
    assert "2 fields where the header has 3" in report.problems[1]
    assert "not valid UTF-8" in report.problems[2]
    rows = {s.email: (s.name, st) for s, st in list_subscribers(store, "demo")}
    assert rows == {
        "ann@example.org": ("Ann Upper", "active"),
        "cy@example.org": ("Cy, Jr.", "active"),
        "dee@example.org": ("Dee", "active"),
    }
    with store.session() as session:
        row = session.scalars(
            select(SubscriberRow).where(SubscriberRow.email == "cy@example.org")
        ).one()
        assert row.attributes == {"city": "Lima"}
        assert row.status_source == "import"
    assert events_of(store, "dee@example.org") == [("active", "import")]


def test_a_file_without_an_email_column_is_refused_whole(tmp_path: Path, store: Store) -> None:
    path = write(tmp_path / "x.csv", b"mail,name\na@example.org,A\n")
    with pytest.raises(SubscriberError, match="no 'email' column"):
        import_csv(store, "demo", path)
    with pytest.raises(SubscriberError, match="is empty"):
        import_csv(store, "demo", write(tmp_path / "empty.csv", b""))
    with pytest.raises(SubscriberError, match="cannot be read"):
        import_csv(store, "demo", tmp_path / "missing.csv")
    utf16 = "email,name\na@example.org,A\n".encode("utf-16")
    with pytest.raises(SubscriberError, match="is not UTF-8 text"):
        import_csv(store, "demo", write(tmp_path / "utf16.csv", utf16))


def test_a_file_in_another_encoding_is_reported_line_by_line(tmp_path: Path, store: Store) -> None:
    latin1 = "email,name\nzoe@example.org,Zoë\nbo@example.org,Bo\n".encode("latin-1")
    report = import_csv(store, "demo", write(tmp_path / "latin1.csv", latin1))
    assert report.added == 1
    assert len(report.problems) == 1 and "line 2: is not valid UTF-8" in report.problems[0]


def test_reimport_never_resurrects_and_updates_the_rest(tmp_path: Path, store: Store) -> None:
    path = write(
        tmp_path / "a.csv", b"email,name\na@example.org,A\nb@example.org,B\nc@example.org,C\n"
    )
    import_csv(store, "demo", path, status="pending")
    remove_subscriber(store, "demo", "a@example.org")
    with store.session() as session:
        record_bounce(session, "b@example.org", "hard", "webhook:postmark")
    report = import_csv(
        store, "demo", write(tmp_path / "b.csv", path.read_bytes() + b"d@example.org,D\n")
    )
    assert (report.added, report.kept_status, report.updated) == (1, 2, 1)
    assert status_of(store, "a@example.org") == "unsubscribed"
    assert status_of(store, "b@example.org") == "bounced"
    assert status_of(store, "c@example.org") == "active"
    assert events_of(store, "c@example.org") == [("pending", "import"), ("active", "import")]
    assert events_of(store, "b@example.org")[-1] == ("bounced", "webhook")


def test_import_refuses_a_status_that_is_not_for_new_subscribers(
    tmp_path: Path, store: Store
) -> None:
    with pytest.raises(SubscriberError, match="active or pending"):
        import_csv(
            store, "demo", write(tmp_path / "a.csv", b"email\na@example.org\n"), status="bounced"
        )


def test_export_imports_back_the_same_list(tmp_path: Path, store: Store) -> None:
    import_csv(
        store,
        "demo",
        write(
            tmp_path / "a.csv",
            "email,name,plan\nå@example.org,Åsa,paid\nb@example.org,B,\n".encode(),
        ),
    )
    out = io.StringIO()
    assert export_csv(store, "demo", out) == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["email"], r["name"], r["status"], r["plan"]) for r in rows] == [
        ("å@example.org", "Åsa", "active", "paid"),
        ("b@example.org", "B", "active", ""),
    ]
    path = tmp_path / "exported.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    again = import_csv(store, "copy", path)
    assert again.added == 2 and not again.problems


def test_suppression_is_global_and_blocks_sending_on_every_list(store: Store) -> None:
    add_subscriber(store, "one", "x@example.org")
    add_subscriber(store, "two", "x@example.org")
    add_subscriber(store, "two", "y@example.org")
    with store.session() as session:
        assert suppress(session, "x@EXAMPLE.org", "manual", "cli")
        assert not suppress(session, "x@example.org", "manual", "cli")
        assert count_active(session, "one") == 0
        assert count_active(session, "two") == 1
        rows = session.scalars(select(SubscriberRow)).all()
        assert blocked_subscribers(session, rows) == {
            rows[0].id: "suppressed",
            rows[1].id: "suppressed",
        }
    assert status_of(store, "x@example.org", "one") == "active"  # manual: status kept
    assert status_counts(store, "two")["suppressed"] == 1
    with store.session() as session:
        assert unsuppress(session, "x@example.org")
        assert count_active(session, "one") == 1


def test_soft_bounces_suppress_at_the_limit(store: Store) -> None:
    add_subscriber(store, "demo", "s@example.org")
    with store.session() as session:
        outcomes = [
            record_bounce(session, "s@example.org", "soft", "webhook:mailgun", soft_limit=2)
            for _ in range(3)
        ]
    assert outcomes == ["counted", "suppressed", "already suppressed"]
    assert status_of(store, "s@example.org") == "bounced"


def test_a_complaint_outranks_a_bounce(store: Store) -> None:
    add_subscriber(store, "demo", "c@example.org")
    with store.session() as session:
        record_bounce(session, "c@example.org", "complaint", "webhook:ses")
        record_bounce(session, "c@example.org", "hard", "webhook:ses")
    assert status_of(store, "c@example.org") == "complained"


def test_paused_subscribers_are_blocked_until_the_pause_ends(store: Store) -> None:
    subscriber, _ = add_subscriber(store, "demo", "p@example.org")
    with store.session() as session:
        rows.set_preferences(session, subscriber.id, sections=None, pause_weeks=1)
        row = session.get_one(SubscriberRow, subscriber.id)
        assert blocked_subscribers(session, [row]) == {subscriber.id: "paused"}
        rows.set_preferences(session, subscriber.id, sections=None, pause_weeks=0)
        assert blocked_subscribers(session, [row]) == {}


def test_add_keeps_a_status_the_subscriber_chose(store: Store) -> None:
    subscriber, created = add_subscriber(store, "demo", "a@example.org", name="A")
    assert created
    with store.session() as session:
        record = rows.get(session, subscriber.id)
        assert record is not None
        change(session, record, SubscriberStatus.UNSUBSCRIBED, "one-click")
    again, created = add_subscriber(store, "demo", "A@Example.org".replace("A@", "a@"))
    assert not created and again.id == subscriber.id
    assert status_of(store, "a@example.org") == "unsubscribed"


def test_remove_and_forget(store: Store) -> None:
    add_subscriber(store, "demo", "a@example.org")
    assert "Unsubscribed" in remove_subscriber(store, "demo", "a@example.org")
    assert "already" in remove_subscriber(store, "demo", "a@example.org")
    assert "Deleted" in remove_subscriber(store, "demo", "a@example.org", forget=True)
    # A bounce outranks an unsubscription: the status that explains the silence stays.
    add_subscriber(store, "demo", "b@example.org")
    with store.session() as session:
        record_bounce(session, "b@example.org", "hard", "webhook:ses")
    assert "is bounced" in remove_subscriber(store, "demo", "b@example.org")
    assert status_of(store, "b@example.org") == "bounced"
    remove_subscriber(store, "demo", "b@example.org", forget=True)
    assert list_subscribers(store, "demo") == []
    with pytest.raises(SubscriberError, match="not on the list"):
        remove_subscriber(store, "demo", "a@example.org")
    with pytest.raises(SubscriberError, match="no list"):
        list_subscribers(store, "nope")


def test_cli_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = demo_project(tmp_path, base_url="http://127.0.0.1:8000")
    c = ["--config", str(config)]
    csv_path = tmp_path / "examples" / "subscribers.csv"
    assert main(["subscribers", "import", "demo", str(csv_path), *c]) == 0
    assert main(["subscribers", "add", "demo", "new@example.org", "--name", "New", *c]) == 0
    assert main(["subscribers", "remove", "demo", "reader@example.com", *c]) == 0
    capsys.readouterr()
    assert main(["subscribers", "list", "demo", "--json", *c]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"email": "reader@example.com", "name": "", "status": "unsubscribed"} in listed
    assert len(listed) == 5
    assert main(["subscribers", "counts", "demo", "--json", *c]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["active"] == 4 and counts["unsubscribed"] == 1
    assert main(["subscribers", "export", "demo", "--out", str(tmp_path / "out.csv"), *c]) == 0
    assert (tmp_path / "out.csv").read_text(encoding="utf-8").startswith("email,name,status")
    assert main(["subscribers", "suppress", "new@example.org", *c]) == 0
    capsys.readouterr()
    assert main(["subscribers", "show", "demo", "reader@example.com", *c]) == 0
    shown = capsys.readouterr().out
    assert "on 'demo': unsubscribed" in shown
    assert re.search(r"active\s+│\s+unsubscribed\s+│\s+cli", shown)
    assert main(["subscribers", "show", "demo", "new@example.org", *c]) == 0
    assert "suppressed: manual (cli" in capsys.readouterr().out
    assert main(["subscribers", "import", "demo", str(tmp_path / "nope.csv"), *c]) == 1
    assert "cannot be read" in capsys.readouterr().err
    bad = write(tmp_path / "bad.csv", b"email\nok@example.org\nnope\n")
    assert main(["subscribers", "import", "demo", str(bad), *c]) == 0
    captured = capsys.readouterr()
    assert "line 3" in captured.err and "1 added" in captured.out


def test_a_suppressed_address_gets_nothing_from_any_list(tmp_path: Path) -> None:
    config = load_config(
        demo_project(tmp_path, base_url="http://127.0.0.1:8000", extra_yaml=SECOND_NEWSLETTER)
    )
    store = Store(config.database_url)
    try:
        import_csv(store, "demo", tmp_path / "examples" / "subscribers.csv")
        import_csv(store, "other", tmp_path / "examples" / "subscribers.csv")
        with store.session() as session:
            record_bounce(session, "samuel.okoye@example.org", "hard", "webhook:sendgrid")
        weekly = run(config, store, "weekly")
        evening = run(config, store, "evening")
        assert weekly.send is not None and weekly.send.sent == 3
        assert evening.send is not None and evening.send.sent == 3
        sent_to = recipients(tmp_path)
        assert len(sent_to) == 6
        assert "samuel.okoye@example.org" not in sent_to
    finally:
        store.close()


def test_someone_suppressed_after_queueing_is_skipped_at_send_time(tmp_path: Path) -> None:
    import asyncio

    from digest.dispatch import send_issue
    from digest.pipeline import Pipeline

    config = load_config(demo_project(tmp_path, base_url="http://127.0.0.1:8000"))
    store = Store(config.database_url)
    try:
        import_csv(store, "demo", tmp_path / "examples" / "subscribers.csv")
        pipeline = Pipeline(config, store)
        built = asyncio.run(pipeline.build("weekly"))
        assert built.rendered is not None
        row = pipeline._record_issue("weekly", config.newsletter("weekly"), built)
        assert row is not None
        with store.session() as session:
            suppress(session, "ava.lindqvist@example.org", "complaint", "webhook:postmark")
        factory = pipeline.factory("weekly", built.rendered, message_key="k", date=row.created_at)
        from digest.backends import make_backend

        async def send():
            async with make_backend("local", config.backends["local"]) as backend:
                return await send_issue(store, row.id, factory, backend)

        report = asyncio.run(send())
        assert (report.sent, report.skipped) == (3, 1)
        assert "ava.lindqvist@example.org" not in recipients(tmp_path)
    finally:
        store.close()


@pytest.fixture
def pg_store(postgres_url: str):
    """A store in a fresh PostgreSQL database (conftest's ``postgres_url``)."""
    store = Store(postgres_url)
    yield store
    store.close()


def test_import_suppression_and_sending_rules_on_postgresql(
    tmp_path: Path, pg_store: Store
) -> None:
    path = write(
        tmp_path / "a.csv",
        b"email,name,city\na@Example.org,A,Oslo\nb@example.org,B,Lima\nbad,,\na@example.ORG,A2,Riga\n",
    )
    report = import_csv(pg_store, "demo", path)
    assert (report.added, len(report.problems)) == (2, 1)
    again = import_csv(pg_store, "demo", path)
    assert again.unchanged == 2
    with pg_store.session() as session:
        record_bounce(session, "b@example.org", "hard", "webhook:ses")
        assert count_active(session, "demo") == 1
    assert status_of(pg_store, "b@example.org") == "bounced"
    assert status_counts(pg_store, "demo")["suppressed"] == 1
    with pg_store.session() as session:
        row = session.scalars(
            select(SubscriberRow).where(SubscriberRow.email == "a@example.org")
        ).one()
        assert (row.name, row.attributes) == ("A2", {"city": "Riga"})
