"""Preview is the issue: freeze at preview, send byte for byte, send-test sends a copy.

Runs the real pipeline on a local feed of article pages written here, a real SQLite
file and the outbox backend (a Maildir of real .eml files).
"""

from __future__ import annotations

import asyncio
import mailbox
import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.cli import main
from digest.config import load_config
from digest.pipeline import Pipeline, PreviewFiles
from digest.store import Store
from digest.store.tables import DeliveryRow, IssueDraftRow, IssueItemRow, IssueRow
from digest.subscribers import import_csv
from tests.support import body_text
from tests.support.email_samples import STORIES, make_site, write_site


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return make_site(tmp_path)


def pipeline(site: Path, day: int) -> Pipeline:
    config = load_config(site / "schedules.yaml")
    store = Store(config.database_url)
    return Pipeline(config, store, now=lambda: datetime(2026, 11, day, 7, 0, tzinfo=UTC))


def outbox(site: Path) -> list[bytes]:
    box = mailbox.Maildir(site / "outbox", create=True)
    return [bytes(message) for message in box]


def html_part(data: bytes) -> str:
    message = message_from_bytes(data, policy=policy.default)
    return body_text(message, "html")


def test_run_sends_the_previewed_issue_byte_for_byte(site: Path) -> None:
    first = pipeline(site, 20)
    import_csv(first.store, "readers", site / "readers.csv")
    files = asyncio.run(first.preview("weekly", site / "preview"))
    assert isinstance(files, PreviewFiles)
    previewed = files.html.read_text(encoding="utf-8")
    assert "20 November 2026" in previewed

    # Three days later, same articles: the run sends the frozen draft, not a rebuild
    # (which would carry the new date).
    report = asyncio.run(pipeline(site, 23).run("weekly"))
    assert report.send is not None and report.send.sent == 2
    assert "Sent issue #1 exactly as previewed." in report.notes
    by_recipient = {
        message_from_bytes(data, policy=policy.default)["To"].addresses[0].username: data
        for data in outbox(site)
    }
    # The preview is filled in for the sample reader: Ann's copy is the same but for
    # her greeting and her links' tokens.
    anns = re.sub(
        r"/(unsubscribe|preferences)/[^\"'<\s]+", r"/\1/preview", html_part(by_recipient["ann"])
    )
    assert anns.replace("Hi Ann,", "Hi Preview Reader,") == previewed
    assert "Hi Bob," in html_part(by_recipient["bob"])
    sent_date = message_from_bytes(by_recipient["ann"], policy=policy.default)["Date"]
    assert sent_date.datetime == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    with pipeline(site, 23).store.session() as session:
        assert session.scalar(select(func.count(IssueDraftRow.id))) == 0
        titles = session.scalars(select(IssueItemRow.title).order_by(IssueItemRow.position))
        assert next(iter(titles)) == "Fish prices settle after a stormy week"  # Market first


def test_new_articles_after_the_preview_rebuild_the_issue(site: Path) -> None:
    first = pipeline(site, 20)
    import_csv(first.store, "readers", site / "readers.csv")
    asyncio.run(first.preview("weekly", site / "preview"))
    write_site(site, [*STORIES, ("crane", "Harbour", "2026-11-21T08:00:00Z", "A new crane")])

    report = asyncio.run(pipeline(site, 23).run("weekly"))
    assert any("1 new article(s) arrived since the preview" in n for n in report.notes)
    assert report.items == 4
    with pipeline(site, 23).store.session() as session:
        assert session.scalar(select(func.count(IssueDraftRow.id))) == 0
    html = html_part(outbox(site)[0])
    assert "A new crane" in html and "23 November 2026" in html


def test_preview_marks_nothing_sent(site: Path) -> None:
    first = pipeline(site, 20)
    asyncio.run(first.preview("weekly", site / "preview"))
    again = asyncio.run(first.preview("weekly", site / "preview"))
    assert isinstance(again, PreviewFiles) and again.built.issue is not None
    assert again.built.issue.number == 1 and len(again.built.issue.items) == 3
    with first.store.session() as session:
        assert session.scalar(select(func.count(IssueRow.id))) == 0
        assert session.scalar(select(func.count(DeliveryRow.id))) == 0
        # The second preview replaced the first draft.
        assert session.scalars(select(IssueDraftRow.number)).all() == [1]


def test_send_test_sends_a_marked_copy_and_records_nothing(site: Path) -> None:
    first = pipeline(site, 20)
    import_csv(first.store, "readers", site / "readers.csv")
    result = asyncio.run(first.send_test("weekly", ["editor@example.org", "not an address"]))
    assert result.issue_number == 1
    assert [d.recipient for d in result.deliveries] == ["editor@example.org"]
    assert len(result.problems) == 1 and "not an address" in result.problems[0]
    (data,) = outbox(site)
    message = message_from_bytes(data, policy=policy.default)
    assert message["Subject"].startswith("[TEST] ")
    assert message["To"] == "editor@example.org"
    with first.store.session() as session:
        assert session.scalar(select(func.count(IssueRow.id))) == 0
        assert session.scalar(select(func.count(IssueItemRow.id))) == 0
    # The real run afterwards still sends issue #1 with every article.
    report = asyncio.run(pipeline(site, 23).run("weekly"))
    assert report.issue_number == 1 and report.items == 3 and report.send is not None
    assert report.send.sent == 2


def test_send_test_command(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(site / "schedules.yaml")
    assert main(["--config", config, "send-test", "weekly", "--to", "a@example.org"]) == 0
    assert "sent to 1 of 1 address(es); nothing was recorded as sent" in capsys.readouterr().out
    assert main(["--config", config, "send-test", "weekly", "--to", "broken"]) == 1
    assert "skipped 'broken'" in capsys.readouterr().err


def test_run_prints_notes(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(site / "schedules.yaml")
    assert (
        main(["--config", config, "subscribers", "import", "readers", str(site / "readers.csv")])
        == 0
    )
    assert main(["--config", config, "preview", "weekly", "--out", str(site / "p")]) == 0
    assert main(["--config", config, "run", "weekly"]) == 0
    assert "note: Sent issue #1 exactly as previewed." in capsys.readouterr().out


def test_thin_week_is_skipped_and_the_run_says_so(site: Path) -> None:
    config_file = site / "schedules.yaml"
    config_file.write_text(config_file.read_text() + "    min_items: 5\n", encoding="utf-8")
    first = pipeline(site, 20)
    import_csv(first.store, "readers", site / "readers.csv")
    report = asyncio.run(first.run("weekly"))
    assert report.send is None and report.items == 3
    assert report.message == (
        "Nothing sent for 'weekly': 3 new article(s), fewer than min_items (5)."
    )
    assert outbox(site) == []


def test_oversized_issue_is_trimmed_and_the_rest_waits_for_the_next(site: Path) -> None:
    many = [
        (f"story-{n:02d}", "Harbour", f"2026-11-{1 + n:02d}T08:00:00Z", f"Harbour story {n:02d}")
        for n in range(26)
    ]
    write_site(site, many)
    config_file = site / "schedules.yaml"
    config_file.write_text(config_file.read_text() + "    max_html_kb: 24\n", encoding="utf-8")
    first = pipeline(site, 28)
    import_csv(first.store, "readers", site / "readers.csv")
    report = asyncio.run(first.run("weekly"))
    assert report.send is not None and 0 < report.items < 26
    (note,) = [n for n in report.notes if n.startswith("Dropped")]
    assert f"Dropped {26 - report.items} lowest-priority item(s)" in note
    # Newest first: the oldest stories are the ones left out, and they lead issue #2.
    assert "Harbour story 00" in note
    second = asyncio.run(pipeline(site, 29).run("weekly", dry_run=True))
    assert second.issue_number == 2 and second.items == 26 - report.items
    assert second.notes == ()  # what is left fits


def test_dry_run_reports_dropped_items(site: Path) -> None:
    many = [
        (f"story-{n:02d}", "Harbour", f"2026-11-{1 + n:02d}T08:00:00Z", f"Harbour story {n:02d}")
        for n in range(26)
    ]
    write_site(site, many)
    config_file = site / "schedules.yaml"
    config_file.write_text(config_file.read_text() + "    max_html_kb: 24\n", encoding="utf-8")
    report = asyncio.run(pipeline(site, 28).run("weekly", dry_run=True))
    assert report.message.startswith("Dry run: issue #1")
    assert len(report.notes) == 1 and report.notes[0].startswith("Dropped ")
