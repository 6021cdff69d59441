"""The web service under hostile or broken input: every malformed request gets a 4xx
(never a 500), a background task that fails reaches the operator, and letter case
makes no second person. On SQLite and PostgreSQL, through Starlette's TestClient
(background tasks run before the call returns)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from digest import subscriptions
from digest.config import load_config
from digest.store import Store
from digest.store import subscribers as rows
from digest.subscribers_csv import import_csv
from digest.tokens import make_token
from digest.web import create_app
from tests.support.subscribers import SECRET, demo_project


@pytest.fixture
def web(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Store, Path]]:
    """The demo's web app on ``database_url``: ``(client, store, project folder)``."""
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    config = load_config(demo_project(tmp_path, base_url="http://127.0.0.1:8000"))
    store = Store(database_url)
    import_csv(store, "demo", tmp_path / "examples" / "subscribers.csv")
    with TestClient(create_app(config, store), raise_server_exceptions=False) as client:
        yield client, store, tmp_path
    store.close()


def _token(purpose: str, subscriber_id: int, list_name: str = "demo") -> str:
    return make_token(SECRET.encode(), purpose, subscriber_id, list_name)


def _ava(store: Store) -> rows.SubscriberRecord:
    with store.session() as session:
        found = rows.find(session, "demo", "ava.lindqvist@example.org")
        assert found is not None
        return found


# -- item 12: every malformed request gets a 4xx -------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/archive/weekly/99999999999999999999",
        "/archive/weekly/2147483648",
        "/archive/weekly/9223372036854775808",
        "/archive/%00/1",  # PostgreSQL refuses NUL in a query
        "/archive/%00",
    ],
)
def test_an_issue_number_past_any_integer_column_is_a_404(web, path: str) -> None:
    client, _, _ = web
    response = client.get(path)
    assert response.status_code == 404
    assert "Traceback" not in response.text


def test_form_fields_with_nul_or_control_characters_are_a_4xx_or_cleaned(web) -> None:
    client, store, _ = web
    for form in (
        {"email": "nul\x00@example.org", "list": "demo"},
        {"email": "ok@example.org", "list": "de\x00mo"},
    ):
        assert client.post("/subscribe", data=form).status_code == 400
    named = client.post(
        "/subscribe", data={"email": "named@example.org", "list": "demo", "name": "A\x00B\x07C"}
    )
    assert named.status_code == 200
    with store.session() as session:
        record = rows.find(session, "demo", "named@example.org")
    assert record is not None and record.name == "ABC"


def test_a_broken_multipart_body_is_a_400(web) -> None:
    client, store, _ = web
    ava = _ava(store)
    for path in ("/subscribe", f"/unsubscribe/{_token('unsubscribe', ava.id)}"):
        response = client.post(
            path,
            content=b"--xx\r\nContent-Disposition: form-data\r\n\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=xx"},
        )
        assert response.status_code == 400, (path, response.status_code)
    assert _ava(store).status == "active"


def test_preferences_with_fields_of_the_wrong_shape_are_a_400(web) -> None:
    client, store, _ = web
    url = f"/preferences/{_token('preferences', _ava(store).id)}"
    for data in (
        {"action": "save", "pause_weeks": "99999999999999999999999"},
        {"action": "save", "pause_weeks": "١"},
        {"action": "save", "pause_weeks": "nan"},
        {"action": "\x00"},
    ):
        response = client.post(url, data=data)
        assert response.status_code == 400, (data, response.status_code)
    files = {"section": ("a.txt", b"Europe", "text/plain")}
    upload = client.post(url, data={"action": "save", "pause_weeks": "0"}, files=files)
    assert upload.status_code == 400


# -- item 10: a failed background task reaches the operator --------------------------------


def test_a_confirmation_that_cannot_be_sent_is_logged_and_shown_on_healthz(
    web, caplog: pytest.LogCaptureFixture
) -> None:
    client, _, folder = web
    assert client.get("/healthz").json()["status"] == "ok"
    (folder / "outbox").write_text("a file where the outbox folder should be")
    with caplog.at_level(logging.ERROR, logger="digest.web"):
        response = client.post("/subscribe", data={"email": "new@example.org", "list": "demo"})
    assert response.status_code == 200
    assert [
        r for r in caplog.records if r.levelno == logging.ERROR and "confirmation" in r.getMessage()
    ]
    health = client.get("/healthz")
    assert health.status_code == 200
    report = health.json()
    assert report["status"] == "degraded"
    assert report["background"]["failed"] == 1
    assert "confirmation" in report["background"]["last_error"]
    # Once sending works again, the service is ok; the count stays for the record.
    (folder / "outbox").unlink()
    client.post("/subscribe", data={"email": "other@example.org", "list": "demo"})
    report = client.get("/healthz").json()
    assert report["status"] == "ok" and report["background"]["failed"] == 1


def test_a_background_task_that_raises_a_bug_is_caught_logged_and_counted(
    web, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client, _, _ = web

    def broken(*_args: object) -> None:
        raise RuntimeError("a bug in the confirmation message")

    monkeypatch.setattr("digest.confirmation.confirmation_message", broken)
    with caplog.at_level(logging.ERROR, logger="digest.web"):
        response = client.post("/subscribe", data={"email": "new@example.org", "list": "demo"})
    assert response.status_code == 200
    (logged,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged.exc_info is not None
    report = client.get("/healthz").json()
    assert report["status"] == "degraded" and report["background"]["failed"] == 1


# -- item 6: one person whatever the letter case ------------------------------------------


def test_the_address_rate_limit_ignores_letter_case(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    extra = "web:\n  subscribe_per_address: 1\n"
    config = load_config(demo_project(tmp_path, base_url="http://127.0.0.1:8000", extra_yaml=extra))
    store = Store(config.database_url)
    try:
        with TestClient(create_app(config, store)) as client:
            for address in ("Flood@example.org", "flood@EXAMPLE.org", "FLOOD@example.org"):
                client.post("/subscribe", data={"email": address, "list": "demo"})
        assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1
        assert subscriptions.request(store, "demo", "fLOOD@example.org", "", "") is not None
        with store.session() as session:
            assert [r.email for r in rows.members(session, "demo")] == ["Flood@example.org"]
    finally:
        store.close()


# -- item 5: the form cannot undo an unsubscribe -------------------------------------------


def test_through_the_web_an_unsubscribe_stands_until_the_mailed_link_is_followed(web) -> None:
    client, store, folder = web
    ava = _ava(store)
    unsubscribe = f"/unsubscribe/{_token('unsubscribe', ava.id)}"
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    form = {"email": "Ava.Lindqvist@example.org", "list": "demo"}
    assert client.post("/subscribe", data=form).status_code == 200
    import_csv(store, "demo", folder / "examples" / "subscribers.csv")
    assert _ava(store).status == "unsubscribed"
    (mail,) = (folder / "outbox" / "new").iterdir()
    link = next(w for w in mail.read_text().split() if "/confirm/" in w)
    assert client.get(link.removeprefix("http://127.0.0.1:8000")).status_code == 200
    assert _ava(store).status == "active"
