"""The editor in the loop (issue 16), end to end with the outbox backend, the daemon's
slot function under a frozen clock and the web app: draft, review mail, edits, approval
from the signed link, the scheduled send of exactly what was approved, the timeout
both ways, an edit withdrawing an approval, forged and stale links refused, and the
archive's Atom feed."""

from __future__ import annotations

import asyncio
import email
import logging
import re
import shlex
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parseaddr
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from sqlalchemy import select
from starlette.testclient import TestClient

from digest.cli import main
from digest.config import ReviewConfig, load_config
from digest.editorial import Editorial
from digest.pipeline import Pipeline
from digest.render import note_html, note_text
from digest.schedule import Daemon
from digest.store import Store
from digest.store.editorial import Edits
from digest.store.subscribers import set_preferences
from digest.store.tables import SubscriberRow
from digest.web import create_app
from tests.support import ROOT
from tests.support.docs import parse
from tests.support.schedule import Project, project_on

EDITOR = "editor@example.org"
#: A Monday 07:00 UTC: a slot of the default cron "0 7 * * mon".
SLOT = datetime(2030, 1, 7, 7, 0, tzinfo=UTC)
NOTE = "**Editor's pick** this week: read [the lead](https://example.org/lead) first.\n"


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with project_on(request.param, tmp_path) as project:
        project.add_subscribers(3)
        yield project


def under_review(project: Project, sections: list[str] | None = None, **review: object) -> None:
    """schedules.yaml with ``news`` under review by ``EDITOR`` (Monday 07:00 UTC)."""
    settings = {"required": True, "reviewers": [EDITOR], "ahead": "24h", "on_timeout": "skip"}
    settings.update(review)
    project.write(max_items=4, misfire_grace="1h", review=settings, sections=sections or [])


def mails(project: Project, to: str | None = None) -> list[EmailMessage]:
    """The messages in the outbox (to ``to`` only, when given), oldest first."""
    if not project.outbox.is_dir():
        return []
    found = []
    for path in sorted(project.outbox.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        if to is None or parseaddr(str(message["To"]))[1] == to:
            found.append(message)
    return found


def readers(project: Project) -> list[EmailMessage]:
    return [m for m in mails(project) if parseaddr(str(m["To"]))[1] != EDITOR]


def part(message: EmailMessage, kind: str) -> str:
    body = message.get_body(preferencelist=(kind,))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def story_urls(text: str) -> list[str]:
    """The story links of a text part, in order."""
    return re.findall(r"^Read more: (\S+)$", text, re.M)


def link(text: str, kind: str) -> str:
    """The path of the approve or open link in a review mail's text part."""
    pattern = r"/review/news/approve/\S+" if kind == "approve" else r"/review/news/(?!approve)\S+"
    match = re.search(r"http://127\.0\.0\.1:8000(" + pattern + ")", text)
    assert match, text[:600]
    return match.group(1)


def opened(project: Project) -> tuple[Editorial, TestClient]:
    config = load_config(project.config)
    store = Store(config.database_url)
    return Editorial(Pipeline(config, store)), TestClient(create_app(config, store))


def frozen_daemon(project: Project, now: datetime) -> Daemon:
    daemon = Daemon(project.config)
    daemon.clock = lambda: now
    return daemon


def test_review_mail_web_edits_approval_and_the_scheduled_send_of_exactly_that(
    project: Project,
) -> None:
    under_review(project)
    daemon = frozen_daemon(project, SLOT - timedelta(hours=30))
    assert not daemon.prepare_review("news")  # more than `ahead` before the slot
    daemon.clock = lambda: SLOT - timedelta(hours=12)
    assert daemon.prepare_review("news")
    assert not daemon.prepare_review("news")  # once per slot
    [review] = mails(project)
    assert parseaddr(str(review["To"]))[1] == EDITOR
    assert str(review["Subject"]).startswith("[REVIEW] ")
    review_text, review_html = part(review, "plain"), part(review, "html")
    approve_path, open_path = link(review_text, "approve"), link(review_text, "open")
    assert approve_path.replace("&", "&amp;") in review_html and "Approve this issue" in review_html
    # The rest of the review mail is the issue as readers get it.
    assert story_urls(review_text) and len(story_urls(review_text)) == 4

    editorial, client = opened(project)
    drafted = editorial.status("news")
    page = client.get(open_path)
    assert page.status_code == 200 and "awaiting approval" in page.text
    dropped, last = drafted.items[1].url, drafted.items[-1].url
    answer = client.post(open_path, data={"action": "drop", "url": dropped}, follow_redirects=False)
    assert answer.status_code == 303
    open_path = answer.headers["location"]
    open_path = client.post(
        open_path, data={"action": "move", "url": last, "to": "1"}, follow_redirects=False
    ).headers["location"]
    open_path = client.post(
        open_path, data={"action": "note", "note": NOTE}, follow_redirects=False
    ).headers["location"]
    open_path = client.post(
        open_path,
        data={"action": "subject", "subject": "This week, chosen"},
        follow_redirects=False,
    ).headers["location"]
    # The mailed approve link was for the first version: the draft changed since.
    assert client.post(approve_path).status_code == 410
    assert client.get(approve_path).status_code == 410
    assert client.get(f"{open_path}/email.html").status_code == 200
    approved = client.post(open_path, data={"action": "approve"})
    assert approved.status_code == 200 and "approved" in approved.text
    edited = editorial.status("news")
    assert edited.approved and edited.approved_by == f"{EDITOR} (web)"
    assert edited.items[0].url == last and dropped not in {i.url for i in edited.items}

    daemon.clock = lambda: SLOT + timedelta(minutes=1)
    daemon.fire("news", SLOT)
    sent = readers(project)
    assert len(sent) == 3
    for message in sent:
        assert str(message["Subject"]) == "This week, chosen"
        text, html = part(message, "plain"), part(message, "html")
        assert story_urls(text) == [item.url for item in edited.items]
        assert "Editor's pick this week: read the lead <https://example.org/lead> first." in text
        assert html.index("<strong>Editor's pick</strong>") < html.index(edited.items[0].url)
    assert [(status) for _, _, status in project.runs()] == ["done"]


def test_an_edit_after_approval_withdraws_it_and_run_waits_for_approval(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    under_review(project)
    config = str(project.config)
    assert main(["-c", config, "run", "news"]) == 0
    assert "approval" in capsys.readouterr().out and not mails(project)
    assert main(["-c", config, "draft", "news", "-o", str(tmp_path / "drafts")]) == 0
    out = capsys.readouterr().out
    assert "Issue #1" in out and "4 item(s)" in out and "awaiting approval" in out
    assert (tmp_path / "drafts" / "news.html").is_file()
    assert main(["-c", config, "approve", "news"]) == 0
    assert "approved by" in capsys.readouterr().out
    assert main(["-c", config, "edit", "news"]) == 0  # no change: still approved
    assert "approved by" in capsys.readouterr().out
    note = tmp_path / "note.md"
    note.write_text(NOTE, encoding="utf-8")
    editorial, _ = opened(project)
    first = editorial.status("news").items[0].url
    assert main(["-c", config, "edit", "news", "--drop", first, "--note-file", str(note)]) == 0
    assert "awaiting approval" in capsys.readouterr().out
    assert main(["-c", config, "run", "news"]) == 0
    assert "awaiting approval" in capsys.readouterr().out
    assert not mails(project)
    assert main(["-c", config, "edit", "news", "--drop", "https://nowhere.example/x"]) == 1
    assert "no story at https://nowhere.example/x" in capsys.readouterr().err
    assert main(["-c", config, "approve", "news"]) == 0
    assert main(["-c", config, "approve", "news", "--revoke"]) == 0
    assert main(["-c", config, "run", "news"]) == 0
    assert not mails(project)
    # `digest preview` replaces the draft: the approval was of another one.
    assert main(["-c", config, "approve", "news"]) == 0
    assert main(["-c", config, "preview", "news", "-o", str(tmp_path / "preview")]) == 0
    capsys.readouterr()
    assert main(["-c", config, "run", "news"]) == 0
    assert "draft under review was replaced" in capsys.readouterr().out and not mails(project)
    assert main(["-c", config, "draft", "news", "-o", str(tmp_path / "drafts")]) == 0
    assert main(["-c", config, "approve", "news"]) == 0
    capsys.readouterr()
    assert main(["-c", config, "run", "news"]) == 0
    assert "exactly as approved" in capsys.readouterr().out
    sent = readers(project)
    assert len(sent) == 3 and first not in part(sent[0], "plain")


def test_pin_keeps_a_story_the_caps_left_out_and_survives_a_rebuild(
    project: Project, tmp_path: Path
) -> None:
    under_review(project)
    editorial, _ = opened(project)
    assert isinstance(asyncio.run(editorial.draft("news", tmp_path)), tuple)
    pipeline = editorial.pipeline
    built = asyncio.run(pipeline.build("news"))
    assert built.issue is not None
    shown = {item.url for item in editorial.status("news").items}
    candidates = asyncio.run(pipeline.gather("news", pipeline.config.newsletter("news")))[0]
    left_out = next(article.url for _, article in candidates if article.url not in shown)
    status = editorial.edit("news", Edits(pin=(left_out,), moves=((left_out, 2),)))
    assert status.items[1].url == left_out and len(status.items) == 5
    rebuilt = asyncio.run(editorial.draft("news", tmp_path))
    assert isinstance(rebuilt, tuple)
    assert rebuilt[0].items[1].url == left_out and rebuilt[0].version == status.version + 1


@pytest.mark.parametrize("on_timeout", ["skip", "send"])
def test_the_timeout_does_what_on_timeout_says_and_logs_it(
    project: Project, on_timeout: str, caplog: pytest.LogCaptureFixture
) -> None:
    under_review(project, on_timeout=on_timeout)
    daemon = frozen_daemon(project, SLOT - timedelta(hours=1))
    assert daemon.prepare_review("news")
    editorial, _ = opened(project)
    editorial.edit("news", Edits(note=NOTE), note=True)
    drafted = editorial.status("news")
    # misfire_grace is 1h: at slot + 2h the wait is over at once.
    daemon.clock = lambda: SLOT + timedelta(hours=2)
    with caplog.at_level(logging.INFO, logger="digest.schedule"):
        daemon.fire("news", SLOT)
    assert "event=review-timeout newsletter=news" in caplog.text
    assert f"action={on_timeout}" in caplog.text
    [(_, _, status)] = project.runs()
    sent = readers(project)
    if on_timeout == "skip":
        assert status == "nothing" and sent == []
    else:
        assert status == "done" and len(sent) == 3
        assert story_urls(part(sent[0], "plain")) == [item.url for item in drafted.items]
        assert "Editor's pick" in part(sent[0], "plain")


def test_the_slot_waits_within_misfire_grace_for_the_approval(project: Project) -> None:
    under_review(project)
    daemon = frozen_daemon(project, SLOT - timedelta(hours=1))
    assert daemon.prepare_review("news")
    daemon.clock = lambda: SLOT + timedelta(minutes=5)
    daemon.approval_every = 0.05
    firing = threading.Thread(target=daemon.fire, args=("news", SLOT))
    firing.start()
    time.sleep(0.5)
    assert firing.is_alive() and readers(project) == []  # waiting, within the grace
    editorial, _ = opened(project)
    editorial.approve("news", "test")
    firing.join(timeout=30)
    assert not firing.is_alive() and len(readers(project)) == 3


def test_forged_cross_purpose_and_foreign_links_are_refused(project: Project) -> None:
    under_review(project)
    daemon = frozen_daemon(project, SLOT - timedelta(hours=1))
    assert daemon.prepare_review("news")
    text = part(mails(project, EDITOR)[0], "plain")
    approve_path, open_path = link(text, "approve"), link(text, "open")
    _, client = opened(project)
    token = approve_path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.post(f"/review/news/approve/{forged}").status_code == 403
    # An open link is not an approve link, and a link is for its own newsletter.
    assert client.post(f"/review/news/approve/{open_path.rsplit('/', 1)[1]}").status_code == 403
    assert client.post(approve_path.replace("/news/", "/other/")).status_code == 403
    # A reviewer taken off the list loses their links.
    under_review(project, reviewers=["someone@example.org"])
    _, client = opened(project)
    assert client.post(approve_path).status_code == 403
    under_review(project)
    _, client = opened(project)
    assert client.get(approve_path).status_code == 200  # a GET only asks
    assert client.post(approve_path).status_code == 200


def test_the_archive_has_an_atom_feed_of_the_issues_web_versions(project: Project) -> None:
    project.write()
    config = load_config(project.config)
    store = Store(config.database_url)
    report = asyncio.run(Pipeline(config, store).run("news"))
    assert report.send is not None and report.send.sent == 3
    client = TestClient(create_app(config, store))
    answer = client.get("/archive/news/feed.xml")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/atom+xml")
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ElementTree.fromstring(answer.content)
    [entry] = feed.findall(f"{atom}entry")
    assert [e.get("href") for e in entry.iterfind(f"{atom}link")] == [
        "http://127.0.0.1:8000/archive/news/1"
    ]
    assert entry.findtext(f"{atom}content") == client.get("/archive/news/1").text
    assert entry.findtext(f"{atom}title") == readers(project)[0]["Subject"]
    assert client.get("/archive/nothing-here/feed.xml").status_code == 404


def test_the_docs_commands_and_review_settings_are_the_real_ones() -> None:
    doc = (ROOT / "docs" / "editorial.md").read_text("utf-8")
    fenced = dict(re.findall(r"^```(\w+)\n(.*?)^```", doc, re.S | re.M))
    commands = [line.split("#")[0] for line in fenced["sh"].splitlines() if line.strip()]
    assert len(commands) == 7
    for command in commands:
        parse(shlex.split(command)[1:])  # a UsageError when the CLI has no such option
    newsletter = yaml.safe_load(fenced["yaml"])["newsletters"]["weekly"]
    review = ReviewConfig.model_validate(newsletter["review"])
    assert review.ahead == timedelta(hours=24) and review.on_timeout == "skip"


def test_the_editors_note_is_sanitised_markdown_in_html_and_plain_text_in_text() -> None:
    note = (
        "A *good* week.\n\n<script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
        "[bad](javascript:alert(1)) and [good](https://example.org/a)\n\n- one\n- two\n"
    )
    html = str(note_html(note))
    assert "<em>good</em>" in html and '<a href="https://example.org/a"' in html
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "<li>one</li>" in html
    text = note_text(note)
    assert "A good week." in text and "good <https://example.org/a>" in text
    assert "- one\n\n- two" in text and "<em>" not in text
    assert note_html("  \n") == "" and note_text("") == ""


def test_a_slot_without_a_draft_drafts_and_asks_the_reviewers_then_waits(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    under_review(project, on_timeout="send")
    # The daemon was down during the `ahead` hours and starts after the grace.
    daemon = frozen_daemon(project, SLOT + timedelta(hours=2))
    with caplog.at_level(logging.INFO, logger="digest.schedule"):
        daemon.fire("news", SLOT)
    [review] = mails(project, EDITOR)
    assert str(review["Subject"]).startswith("[REVIEW] ")
    assert "event=review-draft newsletter=news" in caplog.text
    assert "action=send" in caplog.text and len(readers(project)) == 3


def test_a_reader_who_chose_sections_gets_the_approved_issue_cut_to_them(
    project: Project, tmp_path: Path
) -> None:
    offered = ["Americas", "Analysis", "Asia", "Climate", "Europe", "Indonesia", "Technology"]
    under_review(project, sections=offered)
    editorial, _ = opened(project)
    assert isinstance(asyncio.run(editorial.draft("news", tmp_path)), tuple)
    drafted = editorial.status("news")
    last = drafted.items[-1]
    editorial.edit(
        "news", Edits(moves=((last.url, 1),), note=NOTE, subject="Chosen"), note=True, subject=True
    )
    editorial.approve("news", "test")
    approved = editorial.status("news")
    store = editorial.store
    with store.session() as session:
        reader = session.scalar(
            select(SubscriberRow.id).where(SubscriberRow.email == "reader0@example.org")
        )
        assert reader is not None
        set_preferences(session, reader, sections=[last.section], pause_weeks=0)
    report = asyncio.run(editorial.pipeline.run("news"))
    assert report.send is not None and report.send.sent == 3
    [own] = mails(project, "reader0@example.org")
    text = part(own, "plain")
    assert str(own["Subject"]) == "Chosen" and "Editor's pick" in text
    assert story_urls(text) == [i.url for i in approved.items if i.section == last.section]
    assert 0 < len(story_urls(text)) < len(approved.items)
    [other] = mails(project, "reader1@example.org")
    assert story_urls(part(other, "plain")) == [i.url for i in approved.items]
