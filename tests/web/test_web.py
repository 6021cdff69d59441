"""The web service against a real server: uvicorn on a loopback port, driven by httpx."""

from __future__ import annotations

import concurrent.futures
import email
import email.policy
import re
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event, func, select

from digest.config import load_config
from digest.confirmation import confirmation_message
from digest.errors import ConfigError
from digest.models import Subscriber
from digest.store import issues
from digest.store import subscribers as rows
from digest.store.tables import DeliveryRow, PreferenceRow, SubscriberRow, utcnow
from digest.subscribers import count_active
from digest.tokens import is_demo, make_token, require_secret
from tests.support import body_text, to_address
from tests.support.subscribers import (
    SECRET,
    clear_outbox,
    demo_project,
    events_of,
    outbox_messages,
    recipients,
    release_held_item,
    run,
    served_demo,
    status_of,
    unsubscribe_url,
    wait_for_messages,
)

AVA = "ava.lindqvist@example.org"
SAM = "samuel.okoye@example.org"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)


@pytest.fixture
def live(tmp_path: Path):
    """The demo with its web service running: ``(server, config, store)``."""
    with served_demo(tmp_path) as served:
        yield served


def _token(purpose: str, subscriber_id: int, list_name: str = "demo") -> str:
    return make_token(SECRET.encode(), purpose, subscriber_id, list_name)


def _id(store, address: str) -> int:
    with store.session() as session:
        return session.scalar(select(SubscriberRow.id).where(SubscriberRow.email == address))


def test_healthz_answers_ok(live) -> None:
    server, _, _ = live
    response = httpx.get(f"{server.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "background": {"failed": 0, "last_error": None, "last_failed_at": None},
    }


def test_a_request_waiting_for_the_database_does_not_hold_up_the_others(live) -> None:
    server, _, store = live
    url = f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, AVA))}"
    # Another process holds SQLite's write lock: the unsubscribe waits for it.
    locker = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    waiting = concurrent.futures.ThreadPoolExecutor(1)
    try:
        unsubscribed = waiting.submit(
            httpx.post, url, data={"List-Unsubscribe": "One-Click"}, timeout=30
        )
        time.sleep(0.3)
        assert not unsubscribed.done()
        for path in ("/subscribe/weekly", "/healthz", "/archive/weekly"):
            assert httpx.get(f"{server.url}{path}", timeout=2).status_code in (200, 404)
        assert not unsubscribed.done()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        waiting.shutdown(wait=True)
    assert unsubscribed.result().status_code == 200
    assert status_of(store, AVA) == "unsubscribed"


def test_get_on_the_unsubscribe_link_changes_nothing_and_offers_a_button(live) -> None:
    server, _, store = live
    sid = _id(store, AVA)
    url = f"{server.url}/unsubscribe/{_token('unsubscribe', sid)}"
    for _ in range(3):  # a link scanner may prefetch it several times
        response = httpx.get(url)
        assert response.status_code == 200
    assert status_of(store, AVA) == "active"
    assert '<form method="post"' in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert f"/preferences/{_token('preferences', sid)}" in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_one_click_post_unsubscribes_at_once_and_answers_200(live) -> None:
    server, _, store = live
    url = f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, AVA))}"
    # Exactly what a mail client sends under RFC 8058: no cookie, no session.
    response = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert status_of(store, AVA) == "unsubscribed"
    assert events_of(store, AVA)[-1] == ("unsubscribed", "one-click")
    again = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert [e for e in events_of(store, AVA) if e[0] == "unsubscribed"] == [
        ("unsubscribed", "one-click")
    ]


def test_one_click_in_multipart_form_is_accepted(live) -> None:
    server, _, store = live
    url = f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, AVA))}"
    response = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert status_of(store, AVA) == "unsubscribed"


def test_post_without_the_one_click_body_is_refused(live) -> None:
    server, _, store = live
    url = f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, AVA))}"
    response = httpx.post(url, data={"something": "else"})
    assert response.status_code == 400
    assert status_of(store, AVA) == "active"


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda t, sid: t[:-3], id="truncated"),
        pytest.param(
            lambda t, sid: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), id="forged-mac"
        ),
        pytest.param(lambda t, sid: f"{sid + 1}" + t[len(str(sid)) :], id="other-subscriber"),
        pytest.param(lambda t, sid: _token("preferences", sid), id="cross-purpose"),
        pytest.param(lambda t, sid: "not-a-token", id="garbage"),
        pytest.param(lambda t, sid: "1.%FF%FE.xx", id="bad-bytes"),
    ],
)
def test_bad_tokens_get_a_400_page_and_change_nothing(live, make_bad) -> None:
    server, _, store = live
    sid = _id(store, AVA)
    bad = make_bad(_token("unsubscribe", sid), sid)
    for method in ("GET", "POST"):
        response = httpx.request(
            method, f"{server.url}/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"}
        )
        assert response.status_code == 400, (method, bad)
        assert "not valid" in response.text
    assert status_of(store, AVA) == "active"
    assert status_of(store, SAM) == "active"


def test_genuine_token_for_a_list_the_subscriber_is_not_on_changes_nothing(live) -> None:
    server, _, store = live
    url = f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, AVA), 'other-list')}"
    response = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert "no longer on" in response.text
    assert status_of(store, AVA) == "active"


def test_confirmation_token_does_not_unsubscribe_and_vice_versa(live) -> None:
    server, _, store = live
    sid = _id(store, AVA)
    response = httpx.post(
        f"{server.url}/unsubscribe/{_token('confirm', sid)}", data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 400
    assert httpx.get(f"{server.url}/confirm/{_token('unsubscribe', sid)}").status_code == 400
    assert status_of(store, AVA) == "active"


def _confirm_link(folder: Path) -> str:
    (message,) = [m for m in wait_for_messages(folder, 1) if "Confirm" in str(m["Subject"])]
    found = re.search(r"(https?://\S+/confirm/\S+)", message.get_content())
    assert found
    return found.group(1)


def test_subscribe_sends_a_confirmation_and_the_link_activates(tmp_path: Path) -> None:
    with served_demo(tmp_path) as (server, _, store):
        response = httpx.post(
            f"{server.url}/subscribe",
            data={"email": "New.Reader@Example.NET", "list": "demo", "name": "New Reader"},
        )
        assert response.status_code == 200
        assert "Check your inbox" in response.text
        assert status_of(store, "New.Reader@example.net") == "pending"
        link = _confirm_link(tmp_path)
        (message,) = outbox_messages(tmp_path)
        assert str(message["To"]) == "New Reader <New.Reader@example.net>"
        assert httpx.get(link).status_code == 200
        assert status_of(store, "New.Reader@example.net") == "active"
        assert events_of(store, "New.Reader@example.net") == [
            ("pending", "form"),
            ("active", "confirm"),
        ]
        again = httpx.get(link)
        assert again.status_code == 200 and "Already confirmed" in again.text


def test_the_form_never_writes_a_subscriber_without_a_status(tmp_path: Path) -> None:
    inserted: list[str] = []

    def remember(_mapper: object, _connection: object, target: SubscriberRow) -> None:
        inserted.append(target.status)

    with served_demo(tmp_path) as (server, _, store):
        event.listen(SubscriberRow, "before_insert", remember)
        try:
            httpx.post(f"{server.url}/subscribe", data={"email": "new@example.net", "list": "demo"})
            wait_for_messages(tmp_path, 1)
        finally:
            event.remove(SubscriberRow, "before_insert", remember)
        with store.session() as session:
            (first,) = rows.history(session, _id(store, "new@example.net"))
    assert inserted == ["pending"]
    assert (first.previous, first.status, first.source, first.detail) == (
        "",
        "pending",
        "form",
        "from 127.0.0.1",
    )


def test_the_confirmation_message_is_built_with_safe_headers(tmp_path: Path) -> None:
    config = load_config(demo_project(tmp_path, base_url="http://127.0.0.1:8000"))
    newsletter = config.newsletters["weekly"]
    reader = Subscriber(id=7, email="zoe@example.org", name="Zoë\r\nBcc: eve@example.org")
    built = confirmation_message(newsletter, reader, "http://127.0.0.1:8000/confirm/abc")
    assert (built.subscriber_id, built.recipient) == (7, "zoe@example.org")
    assert b"\r\n" in built.data and b"\n" not in built.data.replace(b"\r\n", b"")
    message = email.message_from_bytes(built.data, policy=email.policy.default)
    (to,) = message.get_all("To") or []
    assert [(a.display_name, a.addr_spec) for a in to.addresses] == [
        ("Zoë Bcc: eve@example.org", "zoe@example.org")
    ]
    assert message["Bcc"] is None
    assert message["Message-ID"] == built.message_id
    assert message["Subject"] == f"Confirm your subscription to {newsletter.title}"
    assert "http://127.0.0.1:8000/confirm/abc" in message.get_content()


def test_an_old_confirmation_link_expires_and_asking_again_renews_it(tmp_path: Path) -> None:
    address = "late.reader@example.net"
    with served_demo(tmp_path) as (server, _, store):
        httpx.post(f"{server.url}/subscribe", data={"email": address, "list": "demo"})
        link = _confirm_link(tmp_path)
        with store.session() as session:  # eight days pass
            row = session.get_one(SubscriberRow, _id(store, address))
            row.updated_at = utcnow() - timedelta(days=8)
        expired = httpx.get(link)
        assert expired.status_code == 400 and "expired" in expired.text
        assert status_of(store, address) == "pending"
        httpx.post(f"{server.url}/subscribe", data={"email": address, "list": "demo"})
        assert len(wait_for_messages(tmp_path, 2)) == 2
        assert httpx.get(link).status_code == 200  # the same address asked again: valid
        assert status_of(store, address) == "active"


def test_subscribe_answers_the_same_whether_or_not_the_address_exists(tmp_path: Path) -> None:
    with served_demo(tmp_path) as (server, _, store):
        known = httpx.post(f"{server.url}/subscribe", data={"email": AVA, "list": "demo"})
        unknown = httpx.post(
            f"{server.url}/subscribe", data={"email": "nobody@example.org", "list": "demo"}
        )
        assert known.status_code == unknown.status_code == 200
        strip = lambda r, a: r.text.replace(a, "ADDRESS")  # noqa: E731
        assert strip(known, AVA) == strip(unknown, "nobody@example.org")
        # The active subscriber gets no mail and stays active.
        assert status_of(store, AVA) == "active"
        assert [str(m["To"]) for m in wait_for_messages(tmp_path, 1)] == ["nobody@example.org"]


def test_subscribe_is_rate_limited_per_ip_and_per_address(tmp_path: Path) -> None:
    extra = "web:\n  subscribe_per_ip: 4\n  subscribe_per_address: 2\n"
    with served_demo(tmp_path, extra_yaml=extra) as (server, _, _):
        form = {"email": "flood@example.org", "list": "demo"}
        answers = [httpx.post(f"{server.url}/subscribe", data=form).status_code for _ in range(3)]
        assert answers == [200, 200, 200]  # the third looks the same ...
        wait_for_messages(tmp_path, 2)  # ... but sends nothing
        fourth = httpx.post(f"{server.url}/subscribe", data={**form, "email": "x@example.org"})
        assert fourth.status_code == 200
        refused = httpx.post(f"{server.url}/subscribe", data={**form, "email": "y@example.org"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0


def test_subscribe_rejects_unknown_lists_and_bad_addresses(live) -> None:
    server, _, _ = live
    assert (
        httpx.post(
            f"{server.url}/subscribe", data={"email": "a@example.org", "list": "nope"}
        ).status_code
        == 400
    )
    bad = httpx.post(f"{server.url}/subscribe", data={"email": "not an address", "list": "demo"})
    assert bad.status_code == 400
    assert (
        "<script>"
        not in httpx.post(
            f"{server.url}/subscribe", data={"email": "<script>@x", "list": "demo"}
        ).text
    )


def test_suppressed_or_unsubscribed_address_cannot_be_mailed_through_the_form(
    tmp_path: Path,
) -> None:
    from digest.subscribers import suppress

    with served_demo(tmp_path) as (server, _, store):
        with store.session() as session:
            suppress(session, SAM, "complaint", "webhook:postmark")
        response = httpx.post(f"{server.url}/subscribe", data={"email": SAM, "list": "demo"})
        assert response.status_code == 200
        wait_for_messages(tmp_path, 0)
        assert status_of(store, SAM) == "complained"


def test_oversized_bodies_are_refused_with_413(tmp_path: Path) -> None:
    with served_demo(tmp_path, extra_yaml="web:\n  max_body_bytes: 2048\n") as (server, _, store):
        big = b"List-Unsubscribe=One-Click&pad=" + b"x" * 5000
        url = f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, AVA))}"
        assert httpx.post(url, content=big).status_code == 413

        def chunks():
            yield b"List-Unsubscribe=One-Click&pad="
            for _ in range(10):
                yield b"y" * 1000

        assert httpx.post(url, content=chunks()).status_code == 413  # no Content-Length
        assert status_of(store, AVA) == "active"
        assert httpx.post(f"{server.url}/webhooks/postmark", content=big).status_code == 413


def test_preferences_save_sections_and_pause(live) -> None:
    server, config, store = live
    sid = _id(store, AVA)
    url = f"{server.url}/preferences/{_token('preferences', sid)}"
    page = httpx.get(url)
    assert page.status_code == 200
    for section in config.newsletter("weekly").sections:
        assert f'value="{section}" checked' in page.text
    saved = httpx.post(
        url, data={"action": "save", "section": ["Europe", "Climate"], "pause_weeks": "2"}
    )
    assert saved.status_code == 200 and "saved" in saved.text
    with store.session() as session:
        prefs = session.get(PreferenceRow, sid)
        assert prefs.sections == ["Europe", "Climate"]
        assert prefs.paused_until is not None
        assert count_active(session, "demo") == 3  # Ava is paused
    assert "paused until" in httpx.get(url).text
    resumed = httpx.post(url, data={"action": "save", "section": ["Europe"], "pause_weeks": "0"})
    assert resumed.status_code == 200
    with store.session() as session:
        assert count_active(session, "demo") == 4


def test_preferences_refuse_bad_choices_without_saving(live) -> None:
    server, _, store = live
    sid = _id(store, AVA)
    url = f"{server.url}/preferences/{_token('preferences', sid)}"
    assert (
        httpx.post(
            url, data={"action": "save", "section": ["Europe"], "pause_weeks": "7"}
        ).status_code
        == 400
    )
    assert httpx.post(url, data={"action": "save", "pause_weeks": "0"}).status_code == 400
    assert httpx.post(url, data={"action": "explode"}).status_code == 400
    with store.session() as session:
        assert session.get(PreferenceRow, sid) is None


def test_unsubscribe_from_all_leaves_every_list_and_resubscribe_comes_back(tmp_path: Path) -> None:
    from digest.subscribers import add_subscriber

    with served_demo(tmp_path) as (server, _, store):
        add_subscriber(store, "other", AVA)
        url = f"{server.url}/preferences/{_token('preferences', _id(store, AVA))}"
        assert httpx.post(url, data={"action": "unsubscribe-all"}).status_code == 200
        assert status_of(store, AVA, "demo") == "unsubscribed"
        assert status_of(store, AVA, "other") == "unsubscribed"
        assert events_of(store, AVA)[-1] == ("unsubscribed", "preferences")
        assert httpx.post(url, data={"action": "resubscribe"}).status_code == 200
        assert status_of(store, AVA, "demo") == "active"
        assert status_of(store, AVA, "other") == "unsubscribed"


def test_one_click_unsubscriber_gets_nothing_from_the_next_run(tmp_path: Path) -> None:
    with served_demo(tmp_path, hold_back_item=True) as (server, config, store):
        first = run(config, store)
        assert first.send is not None and first.send.sent == 4
        (ava_message,) = [m for m in outbox_messages(tmp_path) if AVA in str(m["To"])]
        url = unsubscribe_url(ava_message)
        assert url.startswith(server.url + "/unsubscribe/")
        assert str(ava_message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        response = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        clear_outbox(tmp_path)
        release_held_item(tmp_path)
        second = run(config, store)
        assert second.issue_number == 2 and second.items == 1
        assert AVA not in recipients(tmp_path)
        assert len(recipients(tmp_path)) == 3


def test_archive_shows_every_sent_issue_without_personal_links(tmp_path: Path) -> None:
    with served_demo(tmp_path) as (server, config, store):
        assert httpx.get(f"{server.url}/archive/weekly").status_code == 200
        assert httpx.get(f"{server.url}/archive/weekly/1").status_code == 404
        run(config, store)
        message = outbox_messages(tmp_path)[0]
        html = body_text(message, "html")
        view = re.search(r'href="([^"]+/archive/weekly/1)"', html)
        assert view, "the message links to its archive copy"
        page = httpx.get(view.group(1))
        assert page.status_code == 200
        assert "/unsubscribe/" not in page.text and "/preferences/" not in page.text
        assert "Hello," in page.text
        for subscriber_email in recipients(tmp_path):
            assert subscriber_email not in page.text
        assert "script-src" not in page.headers["content-security-policy"]
        index = httpx.get(f"{server.url}/archive/weekly")
        assert f"{server.url}/archive/weekly/1" in index.text
        assert httpx.get(f"{server.url}/archive/nope").status_code == 404
        assert httpx.get(f"{server.url}/archive/weekly/99").status_code == 404


def test_subscribe_form_page_posts_to_the_service(live) -> None:
    server, _, _ = live
    page = httpx.get(f"{server.url}/subscribe/weekly")
    assert page.status_code == 200
    assert f'action="{server.url}/subscribe"' in page.text
    assert 'name="list" value="demo"' in page.text
    assert httpx.get(f"{server.url}/subscribe/nope").status_code == 404


def test_serve_needs_the_secret_key_outside_the_demo(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DIGEST_SECRET_KEY")
    from tests.support.subscribers import demo_project

    local = load_config(demo_project(tmp_path / "a", base_url="http://127.0.0.1:8000"))
    public = load_config(demo_project(tmp_path / "b", base_url="https://news.example.org"))
    assert is_demo(local) and not is_demo(public)
    require_secret(local)
    with pytest.raises(ConfigError, match="DIGEST_SECRET_KEY"):
        require_secret(public)
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    require_secret(public)


def test_serve_command_refuses_to_start_without_the_key(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from digest.cli import main
    from tests.support.subscribers import demo_project

    monkeypatch.delenv("DIGEST_SECRET_KEY")
    config = demo_project(tmp_path, base_url="https://news.example.org")
    assert main(["serve", "--config", str(config), "--port", "1"]) == 1
    assert "DIGEST_SECRET_KEY is not set" in capsys.readouterr().err


def test_count_of_sendable_excludes_the_unsubscribed(live) -> None:
    server, _, store = live
    httpx.post(
        f"{server.url}/unsubscribe/{_token('unsubscribe', _id(store, SAM))}",
        data={"List-Unsubscribe": "One-Click"},
    )
    with store.session() as session:
        assert count_active(session, "demo") == 3
        assert session.scalar(select(func.count(SubscriberRow.id))) == 4


def _headings(message) -> set[str]:
    text = body_text(message, "plain")
    return {line for line in text.splitlines() if line.isupper() and line.isalpha()}


def test_a_reader_who_chose_sections_gets_only_those(tmp_path: Path) -> None:
    with served_demo(tmp_path) as (server, config, store):
        url = f"{server.url}/preferences/{_token('preferences', _id(store, AVA))}"
        saved = httpx.post(
            url, data={"action": "save", "section": ["Europe", "Climate"], "pause_weeks": "0"}
        )
        assert saved.status_code == 200
        report = run(config, store)
        assert report.send is not None and report.send.sent == 4
        by_reader = {to_address(m).addr_spec: m for m in outbox_messages(tmp_path)}
        assert _headings(by_reader[AVA]) == {"EUROPE", "CLIMATE"}
        assert _headings(by_reader[SAM]) == {
            "EUROPE",
            "AMERICAS",
            "ASIA",
            "ECONOMY",
            "CLIMATE",
            "TECHNOLOGY",
        }
        html = body_text(by_reader[AVA], "html")
        assert "/unsubscribe/" in html and "Ava Lindqvist" in html
        assert str(by_reader[AVA]["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_the_top_story_follows_the_readers_sections(tmp_path: Path) -> None:
    with served_demo(tmp_path, extra_yaml="    top_story: true\n") as (server, config, store):
        for reader, sections in ((AVA, ["Europe"]), (SAM, ["Climate"])):
            url = f"{server.url}/preferences/{_token('preferences', _id(store, reader))}"
            httpx.post(url, data={"action": "save", "section": sections, "pause_weeks": "0"})
        report = run(config, store)
        assert report.send is not None and report.send.sent == 4
        stored = issues.find(store, "weekly", 1)
        assert stored is not None and stored.issue is not None
        issue = stored.issue
        assert issue.top is not None and issue.top.section == "Europe"
        assert issue.top.title not in {i.title for s in issue.sections for i in s.items}
        by_reader = {to_address(m).addr_spec: m for m in outbox_messages(tmp_path)}
        texts = {a: body_text(m, "plain") for a, m in by_reader.items()}

        def top_title(text: str) -> str:
            lines = text.splitlines()
            return next(line for line in lines[lines.index("TOP STORY") + 2 :] if line.strip())

        # Ava wants the top story's section: it stays on top, and not twice.
        assert top_title(texts[AVA]).startswith(issue.top.title[:30])
        assert texts[AVA].count(issue.top.title[:30]) == 1
        # Sam wants Climate only: Climate's newest item is his top story.
        climate = next(s for s in issue.sections if s.name == "Climate")
        assert top_title(texts[SAM]).startswith(climate.items[0].title[:30])
        assert issue.top.title[:30] not in texts[SAM]
        assert _headings(by_reader[SAM]) <= {"CLIMATE"}


def test_a_reader_whose_sections_are_all_absent_is_skipped_not_failed(tmp_path: Path) -> None:
    # Ava chose a section the editor has since dropped from the newsletter.
    with served_demo(tmp_path) as (_, config, store):
        with store.session() as session:
            session.add(PreferenceRow(subscriber_id=_id(store, AVA), sections=["Sport"]))
        report = run(config, store)
        assert report.send is not None
        assert (report.send.sent, report.send.failed, report.send.skipped) == (3, 0, 1)
        assert AVA not in {to_address(m).addr_spec for m in outbox_messages(tmp_path)}
        with store.session() as session:
            status, error = session.execute(
                select(DeliveryRow.status, DeliveryRow.error).where(
                    DeliveryRow.subscriber_id == _id(store, AVA)
                )
            ).one()
        assert (status, error) == ("skipped", "no chosen section")


def test_the_serve_command_serves(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from tests.support.subscribers import ROOT, demo_project, free_socket

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # the command binds the port itself
    config = demo_project(tmp_path, base_url=f"http://127.0.0.1:{port}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET_KEY": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "digest", "serve", "--port", str(port), "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        assert response.json() == {
            "status": "ok",
            "background": {"failed": 0, "last_error": None, "last_failed_at": None},
        }
        assert httpx.get(f"http://127.0.0.1:{port}/archive/weekly").status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_rate_limiter_window_slides() -> None:
    from digest.web.limits import RateLimiter

    now = [1000.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a")
    assert not limiter.allow("a")
    assert limiter.allow("b")  # keys are independent
    assert 0 < limiter.retry_after("a") <= 61
    now[0] += 61
    assert limiter.allow("a")
