"""End to end on the bundled demo: preview, run, the outbox's messages, and a second run."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
from email.message import EmailMessage
from html import unescape as html_unescape
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.backends.outbox import OutboxBackend
from digest.cli import main
from digest.config import load_config
from digest.models import Message
from digest.pipeline import Pipeline
from digest.store import Store
from digest.store.tables import DeliveryRow, IssueRow
from tests.support import body_text

DEMO_SUBSCRIBERS = 4
DEMO_ARTICLES = 10


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def read_outbox(config: Path) -> list[EmailMessage]:
    folder = config.parent / "outbox" / "new"
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


@pytest.fixture
def demo_with_list(demo: Path) -> Path:
    assert (
        cli(demo, "subscribers", "import", "demo", str(demo.parent / "examples/subscribers.csv"))
        == 0
    )
    return demo


def test_preview_writes_html_text_and_eml_and_sends_nothing(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = demo_with_list.parent / "preview"
    assert cli(demo_with_list, "preview", "weekly", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    for suffix in ("html", "txt", "eml"):
        assert str(out / f"weekly.{suffix}") in printed
    html = (out / "weekly.html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert "The Weekly Round-up" in html
    assert not re.search(
        r"x[0-9a-f]{16}(greeting|unsubscribeurl|preferencesurl)x", html
    )  # slots filled
    # The sample reader, never a subscriber, and links that carry no token.
    assert "Hi Preview Reader," in html and "Ava Lindqvist" not in html
    assert "/unsubscribe/preview" in html
    message = email.message_from_bytes(
        (out / "weekly.eml").read_bytes(), policy=email.policy.default
    )
    assert message.get_content_type() == "multipart/alternative"
    assert read_outbox(demo_with_list) == []
    store = Store(load_config(demo_with_list).database_url)
    with store.session() as session:
        assert session.scalar(select(func.count(IssueRow.id))) == 0


def test_run_delivers_one_complete_message_per_subscriber(demo_with_list: Path) -> None:
    assert cli(demo_with_list, "run", "weekly") == 0
    messages = read_outbox(demo_with_list)
    assert len(messages) == DEMO_SUBSCRIBERS
    recipients = sorted(str(m["To"]) for m in messages)
    assert "Zoë Ångström <zoe.angstrom@example.com>" in recipients
    assert "reader@example.com" in recipients
    message_ids = {m["Message-ID"] for m in messages}
    assert len(message_ids) == DEMO_SUBSCRIBERS
    for message in messages:
        assert message.get_content_type() == "multipart/alternative"
        parts = list(message.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert all(p.get_content_charset() == "utf-8" for p in parts)
        for header in ("From", "To", "Subject", "Date", "Message-ID", "List-Id"):
            assert message[header], header
        assert message["From"] == "The Weekly Round-up <news@example.org>"
        # The top headline; the From name already says which newsletter it is.
        assert message["Subject"] and "Weekly Round-up" not in message["Subject"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = message["List-Unsubscribe"]
        assert unsubscribe.startswith(
            "<http://127.0.0.1:8000/unsubscribe/"
        ) and unsubscribe.endswith(">")
        url = unsubscribe[1:-1]
        text, html = (p.get_content() for p in parts)
        assert url in text and url in html  # the footer link is the header's link
        name = str(message["To"]).split(" <")[0].strip('"')
        greeting = f"Hi {name}," if "@" not in name else "Hello,"
        assert greeting in text
        assert text.count("Read more: https://www.northlight-review.example/") == DEMO_ARTICLES


def test_second_run_sends_nothing_and_says_so(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(demo_with_list, "run", "weekly") == 0
    capsys.readouterr()
    assert cli(demo_with_list, "run", "weekly") == 0
    assert (
        "Nothing to send for 'weekly': no new articles since the last issue."
        in capsys.readouterr().out
    )
    assert len(read_outbox(demo_with_list)) == DEMO_SUBSCRIBERS


def test_dry_run_records_and_sends_nothing(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(demo_with_list, "run", "weekly", "--dry-run") == 0
    assert f"would go to {DEMO_SUBSCRIBERS} subscriber(s)" in capsys.readouterr().out
    assert read_outbox(demo_with_list) == []
    assert cli(demo_with_list, "run", "weekly") == 0
    assert len(read_outbox(demo_with_list)) == DEMO_SUBSCRIBERS


class CrashingOutbox(OutboxBackend):
    """Delivers two messages, then the process 'dies' (an exception nobody catches)."""

    delivered = 0

    async def deliver(self, message: Message) -> str:
        if CrashingOutbox.delivered == 2:
            raise KeyboardInterrupt
        CrashingOutbox.delivered += 1
        return await super().deliver(message)


async def test_interrupted_run_resumes_without_losing_or_repeating(
    demo_with_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(OutboxBackend, "max_batch", 1)
    monkeypatch.setitem(
        __import__("digest.backends", fromlist=["BACKENDS"]).BACKENDS, "outbox", CrashingOutbox
    )
    config = load_config(demo_with_list)
    store = Store(config.database_url)
    with pytest.raises(KeyboardInterrupt):
        await Pipeline(config, store).run("weekly", batch_size=1)
    assert len(read_outbox(demo_with_list)) == 2
    with store.session() as session:
        statuses = dict(
            session.execute(
                select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
            ).all()
        )
        assert statuses == {"sent": 2, "queued": 2}
        assert session.scalar(select(IssueRow.status)) == "sending"
    monkeypatch.setitem(
        __import__("digest.backends", fromlist=["BACKENDS"]).BACKENDS, "outbox", OutboxBackend
    )
    report = await Pipeline(config, store).run("weekly")
    assert report.resumed and report.send is not None and report.send.sent == 2
    messages = read_outbox(demo_with_list)
    assert len(messages) == DEMO_SUBSCRIBERS
    assert len({str(m["To"]) for m in messages}) == DEMO_SUBSCRIBERS
    with store.session() as session:
        assert session.scalar(select(IssueRow.status)) == "sent"
        assert session.scalar(select(func.count(IssueRow.id))) == 1


def test_a_new_article_makes_the_next_issue_with_only_that_article(demo_with_list: Path) -> None:
    assert cli(demo_with_list, "run", "weekly") == 0
    site = demo_with_list.parent / "examples/site"
    page = (site / "articles/baltic-grid.html").read_text(encoding="utf-8")
    (site / "articles/new-story.html").write_text(
        page.replace("europe/2026/11/baltic-grid", "europe/2026/11/new-story").replace(
            "The Baltic grid has cut its last cord",
            "A second story about grids has cut its last cord",
        ),
        encoding="utf-8",
    )
    feed = (site / "feed.xml").read_text(encoding="utf-8")
    item = "<item><title>New story</title><link>articles/new-story.html</link><guid>new-1</guid></item>"
    (site / "feed.xml").write_text(feed.replace("<item>", item + "<item>", 1), encoding="utf-8")
    assert cli(demo_with_list, "run", "weekly") == 0
    second = [
        m
        for m in read_outbox(demo_with_list)
        if m["Subject"].startswith("A second story about grids")
    ]
    assert len(second) == DEMO_SUBSCRIBERS
    text = body_text(second[0], "plain")
    assert text.count("Read more: ") == 1
    assert "europe/2026/11/new-story" in text


def test_unreadable_source_is_reported_and_the_others_still_go_out(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_text = demo_with_list.read_text(encoding="utf-8").replace(
        "      - feed: examples/site/feed.xml",
        "      - feed: examples/site/missing.xml\n      - feed: examples/site/feed.xml",
    )
    demo_with_list.write_text(config_text, encoding="utf-8")
    assert cli(demo_with_list, "run", "weekly") == 0
    captured = capsys.readouterr()
    assert "examples/site/missing.xml: no such file" in captured.err
    assert len(read_outbox(demo_with_list)) == DEMO_SUBSCRIBERS


def test_unknown_newsletter_is_a_user_error(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(demo, "run", "monthly") == 1
    assert (
        capsys.readouterr().err.strip()
        == f"error: There is no newsletter 'monthly' in {demo} (known: weekly)."
    )


def test_bad_usage_exits_2(demo: Path) -> None:
    assert cli(demo, "run") == 2
    assert cli(demo, "run", "weekly", "--no-such-flag") == 2


def test_missing_config_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "none.yaml"), "run", "weekly"]) == 1
    assert "none.yaml: no such file" in capsys.readouterr().err


def test_extract_json_has_the_contract_fields(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = demo.parent / "examples/site/articles/baltic-grid.html"
    assert main(["extract", str(page), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("headline", "standfirst", "lead", "url", "image", "section", "published", "byline"):
        assert key in data
    assert data["url"] == "https://www.northlight-review.example/europe/2026/11/baltic-grid"
    assert data["headline"].startswith("The Baltic grid has cut its last cord to the east")


def test_csv_with_a_bad_row_imports_the_rest_and_names_the_line(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = demo.parent / "people.csv"
    csv_file.write_text(
        "\ufeffemail,name,city\nann@example.org,Ann,Oslo\nnot-an-address,Bob,Rome\nCAT@Example.ORG,Cat,Lima\n",
        encoding="utf-8",
    )
    assert cli(demo, "subscribers", "import", "news", str(csv_file)) == 0
    captured = capsys.readouterr()
    assert f"warning: {csv_file}, line 3: 'not-an-address' is not a valid address" in captured.err
    assert "2 added" in captured.out and "1 row(s) skipped" in captured.out
    assert cli(demo, "subscribers", "list", "news", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {"email": "ann@example.org", "name": "Ann", "status": "active"},
        {"email": "CAT@example.org", "name": "Cat", "status": "active"},
    ]


def test_csv_without_email_column_is_a_user_error(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = demo.parent / "people.csv"
    csv_file.write_text("mail,name\nann@example.org,Ann\n", encoding="utf-8")
    assert cli(demo, "subscribers", "import", "news", str(csv_file)) == 1
    assert "has no 'email' column (the header line is: mail, name)" in capsys.readouterr().err


def test_run_outside_the_demo_needs_the_secret_key(
    demo_with_list: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    text = demo_with_list.read_text(encoding="utf-8")
    demo_with_list.write_text(
        text.replace("http://127.0.0.1:8000", "https://news.example.org"), encoding="utf-8"
    )
    assert cli(demo_with_list, "run", "weekly") == 1
    assert "DIGEST_SECRET_KEY is not set." in capsys.readouterr().err
    assert read_outbox(demo_with_list) == []


def test_demo_runs_without_the_secret_key(
    demo_with_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    assert cli(demo_with_list, "run", "weekly") == 0
    assert (demo_with_list.parent / ".digest-secret").exists()
    assert len(read_outbox(demo_with_list)) == DEMO_SUBSCRIBERS


def test_run_without_the_key_records_no_issue(
    demo_with_list: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    text = demo_with_list.read_text(encoding="utf-8")
    demo_with_list.write_text(
        text.replace("http://127.0.0.1:8000", "https://news.example.org"), encoding="utf-8"
    )
    assert cli(demo_with_list, "run", "weekly") == 1
    store = Store(load_config(demo_with_list).database_url)
    with store.session() as session:
        assert session.scalar(select(func.count(IssueRow.id))) == 0


def test_a_readers_sections_are_cut_from_the_issue_as_stored_image_sizes_included(
    demo_with_list: Path,
) -> None:
    from dataclasses import replace

    from digest.models import Issue, Item, Section, Subscriber
    from digest.render import Renderer
    from digest.store import issues
    from digest.store.tables import PreferenceRow, SubscriberRow

    config = load_config(demo_with_list)
    store = Store(config.database_url)
    pipeline = Pipeline(config, store)
    built = asyncio.run(pipeline.build("weekly"))
    assert built.issue is not None

    def sized(item: Item) -> Item:  # as if extraction had read each image's size
        return replace(item, image=f"{item.url}.jpg", image_width=1200, image_height=800)

    issue = Issue(
        built.issue.newsletter,
        built.issue.title,
        built.issue.number,
        built.issue.date,
        tuple(Section(s.name, tuple(sized(i) for i in s.items)) for s in built.issue.sections),
    )
    rendered = Renderer(config, config.newsletter("weekly")).render(issue)
    composed = issues.Composed(issue, rendered, built.article_ids)
    stored = issues.record(store, "weekly", composed, "demo", pipeline.now())
    assert stored is not None
    chosen = issue.sections[0].name
    with store.session() as session:
        reader = session.scalars(select(SubscriberRow).order_by(SubscriberRow.id)).first()
        assert reader is not None
        session.add(PreferenceRow(subscriber_id=reader.id, sections=[chosen]))
        subscriber = Subscriber(id=reader.id, email=reader.email, name=reader.name)
    message = email.message_from_bytes(
        pipeline.messages.for_issue(stored).build(subscriber).data, policy=email.policy.default
    )
    html = body_text(message, "html")
    kept = [i for s in issue.sections for i in s.items if s.name == chosen]
    offered = config.newsletter("weekly").sections
    dropped = [i for s in issue.sections[1:] if s.name in offered for i in s.items]
    shown = html_unescape(html)
    assert all(item.title in shown for item in kept)
    assert dropped and not any(item.title in shown for item in dropped)
    # 1200x800 shown in the template's column: the height is reserved, not lost.
    assert re.search(r'<img [^>]*height="\d+"', html)
