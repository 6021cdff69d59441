"""The provider backends (Postmark, SendGrid, Mailgun, Resend) against a local server
that checks each request against the provider's documented format."""

from __future__ import annotations

from email import message_from_bytes, policy

import httpx
import pytest
from starlette.responses import HTMLResponse, JSONResponse, Response

from digest.backends import make_backend
from digest.backends.base import HttpBackend
from digest.config import Config
from digest.dispatch import SendOptions, send_issue
from digest.errors import ConfigError, SendAborted
from tests.mailserver.issue import queued_issue
from tests.mailserver.providers import KEY, ProviderServer

FAST = SendOptions(backoff_base=0.01, backoff_max=0.02)
PROVIDERS = ["postmark", "sendgrid", "mailgun", "resend"]
LIMITS = {"postmark": 500, "sendgrid": 1000, "mailgun": 1, "resend": 100}


def backend(kind: str, url: str, **settings: object) -> HttpBackend:
    extra: dict[str, object] = {"domain": "mg.digest.test"} if kind == "mailgun" else {}
    config = Config.model_validate(
        {
            "backends": {
                "api": {
                    "type": kind,
                    "base_url": url,
                    "api_key_env": "T_API_KEY",
                    **extra,
                    **settings,
                }
            }
        }
    )
    made = make_backend("api", config.backends["api"])
    assert isinstance(made, HttpBackend)
    return made


def emails(n: int) -> list[str]:
    return [f"reader{i}@example.test" for i in range(n)]


async def run(issue, api: HttpBackend, options: SendOptions = FAST):  # type: ignore[no-untyped-def]
    async with api:
        return await send_issue(issue.store, issue.issue_id, issue.factory, api, options=options)


@pytest.fixture(autouse=True)
def api_key(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_API_KEY", KEY)


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with ProviderServer() as running:
        yield running


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_each_recipient_gets_one_well_formed_message(kind, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    issue = queued_issue(tmp_path / "d.db", emails(7))
    report = await run(issue, backend(kind, server.url))
    assert report.sent == 7, report.reasons
    assert server.state.problems == []
    assert set(server.state.delivered.values()) == {1} and len(server.state.delivered) == 7
    assert max(server.state.batch_sizes) <= LIMITS[kind]
    rows = issue.rows()
    assert all(row.status == "sent" and row.provider_id for row in rows.values())
    if kind == "mailgun":
        parsed = message_from_bytes(server.state.mime[0], policy=policy.default)
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert parsed.get_body(("html",)) is not None and parsed.get_body(("plain",)) is not None
        return
    _, item = server.state.requests[0]
    if kind == "postmark":
        headers = {h["Name"]: h["Value"] for h in item["Headers"]}
        assert item["MessageStream"] == "broadcast" and "Harbour reopens" in item["HtmlBody"]
    elif kind == "sendgrid":
        headers = item["personalizations"][0]["headers"]
        assert item["content"][1]["type"] == "text/html"
    else:
        headers = item["headers"]
        assert "Harbour reopens" in item["text"]
    assert headers["List-Unsubscribe"].startswith("<https://news.digest.test/unsubscribe/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Message-ID" in headers and "List-Id" in headers


async def test_postmark_batches_stay_within_500(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    issue = queued_issue(tmp_path / "d.db", emails(1203))
    report = await run(issue, backend("postmark", server.url, connections=2))
    assert report.sent == 1203
    assert sorted(server.state.batch_sizes) == [203, 500, 500]


async def test_postmark_inactive_recipient_fails_alone_and_is_suppressed(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    issue = queued_issue(
        tmp_path / "d.db", ["a@example.test", "inactive@example.test", "b@example.test"]
    )
    report = await run(issue, backend("postmark", server.url))
    assert report.sent == 2 and report.failed == 1
    row = issue.rows()["inactive@example.test"]
    assert row.status == "failed" and "error 406" in row.error and row.attempts == 1
    assert issue.subscriber_status("inactive@example.test") == "bounced"


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_429_with_retry_after_slows_down_and_retries(kind, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.state.script.append(
        JSONResponse({"message": "Too many requests"}, 429, headers={"Retry-After": "1"})
    )
    issue = queued_issue(tmp_path / "d.db", emails(3))
    api = backend(kind, server.url, connections=1)
    report = await run(issue, api)
    assert report.sent == 3
    assert api.limiter.throttle_count == 1
    assert set(server.state.delivered.values()) == {1}


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_server_errors_are_retried(kind, server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server.state.script.extend([Response("upstream", 502), Response("oops", 503)])
    issue = queued_issue(tmp_path / "d.db", emails(2))
    report = await run(issue, backend(kind, server.url, connections=1))
    assert report.sent == 2 and set(server.state.delivered.values()) == {1}


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_html_instead_of_json_is_reported_and_nothing_marked_sent(
    kind, server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    if kind == "sendgrid":  # SendGrid's success has no body; its errors are JSON
        server.state.script.append(HTMLResponse("<html><body>Bad gateway</body></html>", 400))
    else:
        server.state.script.append(HTMLResponse("<html><body>Maintenance</body></html>", 200))
    issue = queued_issue(tmp_path / "d.db", emails(1))
    report = await run(issue, backend(kind, server.url), SendOptions(max_attempts=1))
    row = issue.rows()["reader0@example.test"]
    assert row.status == "failed" and report.sent == 0
    assert "instead of JSON" in row.error and "text/html" in row.error


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_wrong_key_stops_the_send_with_a_sentence(
    kind, server, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_API_KEY", "wrong")
    issue = queued_issue(tmp_path / "d.db", emails(4))
    with pytest.raises(SendAborted, match="refused the credentials"):
        await run(issue, backend(kind, server.url))
    assert set(issue.statuses().values()) == {"queued"}
    assert not server.state.delivered


async def test_missing_key_variable_is_a_config_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("T_API_KEY")
    with pytest.raises(ConfigError, match=r"\$T_API_KEY, which is not set"):
        await backend("resend", "http://127.0.0.1:9").open()


async def test_resend_idempotency_key_makes_a_repeated_batch_a_no_op(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    issue = queued_issue(tmp_path / "d.db", emails(3))
    api = backend("resend", server.url)
    from digest.models import Subscriber

    messages = [issue.factory.build(Subscriber(id=i + 1, email=e)) for i, e in enumerate(emails(3))]
    async with api:
        first = await api.send(messages)
        again = await api.send(messages)  # a crashed run sending the same batch again
    assert [d.provider_id for d in first] == [d.provider_id for d in again]
    assert set(server.state.delivered.values()) == {1}


async def test_injected_client_is_used_and_left_open(tmp_path) -> None:  # type: ignore[no-untyped-def]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": "r-1"}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    issue = queued_issue(tmp_path / "d.db", emails(1))
    config = Config.model_validate(
        {"backends": {"api": {"type": "resend", "api_key_env": "T_API_KEY"}}}
    ).backends["api"]
    from digest.backends.resend import ResendBackend

    async with ResendBackend("api", config, client=client) as api:
        await send_issue(issue.store, issue.issue_id, issue.factory, api, options=FAST)
    assert seen[0].url == "https://api.resend.com/emails/batch"
    assert not client.is_closed
    await client.aclose()


async def test_a_part_a_json_api_cannot_carry_fails_that_message_with_a_sentence(
    server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from email.message import EmailMessage

    from digest.models import Message

    mime = EmailMessage()
    mime["From"], mime["To"], mime["Subject"] = "news@digest.test", "a@example.test", "Hi"
    mime.set_content("text")
    mime.add_alternative("<p>html</p>", subtype="html")
    mime.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    message = Message(1, "a@example.test", "news@digest.test", "<m1@digest.test>", mime.as_bytes())
    async with backend("postmark", server.url) as api:
        [delivery] = await api.send([message])
    assert delivery.status == "failed"
    assert "application/pdf" in delivery.error and "smtp, mailgun or ses" in delivery.error
    assert not server.state.delivered
