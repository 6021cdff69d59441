"""The provider backends (Postmark, SendGrid, Mailgun, Resend) against a local server
that checks each request against the provider's documented format.

Issues are queued as the pipeline queues them; SendGrid and Mailgun fill in a batch
from the messages' shared content and each reader's values."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path
from typing import TypedDict

import httpx
import pytest
from starlette.responses import HTMLResponse, JSONResponse, Response

from digest.backends import BACKENDS, make_backend
from digest.backends.base import HttpBackend
from digest.backends.merge import MergeBackend
from digest.config import Config
from digest.dispatch import SendOptions, send_issue
from digest.errors import ConfigError, SendAborted
from tests.support import body_text, emails, to_address
from tests.support.mailserver.issue import QueuedIssue, queued_issue
from tests.support.mailserver.providers import KEY, ProviderServer

FAST = SendOptions(backoff_base=0.01, backoff_max=0.02)
# Every HTTP backend but SES (tested against moto in test_backends_ses.py): a new one
# is tested here as soon as its module exists, and fails until the fake API serves it.
PROVIDERS = [k for k, cls in BACKENDS.items() if issubclass(cls, HttpBackend) and k != "ses"]
BATCHING = [k for k, cls in BACKENDS.items() if issubclass(cls, MergeBackend)]


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


def issue_for(
    kind: str, path: Path, addresses: list[str], names: dict[str, str] | None = None
) -> QueuedIssue:
    """An issue queued for ``addresses``, its factory as the pipeline makes it."""
    return queued_issue(path, addresses, names=names)


async def run(issue, api: HttpBackend, options: SendOptions = FAST):
    async with api:
        return await send_issue(issue.store, issue.issue_id, issue.factory, api, options=options)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_API_KEY", KEY)


@pytest.fixture
def server():
    with ProviderServer() as running:
        yield running


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_each_recipient_gets_one_well_formed_message(
    kind: str, server, tmp_path: Path
) -> None:
    issue = issue_for(kind, tmp_path / "d.db", emails(7))
    report = await run(issue, backend(kind, server.url))
    assert report.sent == 7, report.reasons
    assert server.state.problems == []
    assert set(server.state.delivered.values()) == {1} and len(server.state.delivered) == 7
    assert max(server.state.batch_sizes) <= BACKENDS[kind].max_batch
    rows = issue.rows()
    assert all(row.status == "sent" and row.provider_id for row in rows.values())
    if kind in BATCHING:
        got = server.state.received["reader0@example.test"]
        headers = got["headers"]
        assert "Harbour reopens" in got["html"] and "Harbour reopens" in got["text"]
    elif kind == "postmark":
        _, item = server.state.requests[0]
        headers = {h["Name"]: h["Value"] for h in item["Headers"]}
        assert item["MessageStream"] == "broadcast" and "Harbour reopens" in item["HtmlBody"]
    else:
        _, item = server.state.requests[0]
        headers = item["headers"]
        assert "Harbour reopens" in item["text"]
    assert headers["List-Unsubscribe"].startswith("<https://news.digest.test/unsubscribe/")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Message-ID" in headers and "List-Id" in headers


async def test_postmark_batches_stay_within_500(server, tmp_path: Path) -> None:
    issue = issue_for("postmark", tmp_path / "d.db", emails(1203))
    report = await run(issue, backend("postmark", server.url, connections=2))
    assert report.sent == 1203
    assert sorted(server.state.batch_sizes) == [203, 500, 500]


async def test_postmark_inactive_recipient_fails_alone_and_is_suppressed(
    server, tmp_path: Path
) -> None:
    issue = queued_issue(
        tmp_path / "d.db", ["a@example.test", "inactive@example.test", "b@example.test"]
    )
    report = await run(issue, backend("postmark", server.url))
    assert report.sent == 2 and report.failed == 1
    row = issue.rows()["inactive@example.test"]
    assert row.status == "failed" and "error 406" in row.error and row.attempts == 1
    assert issue.subscriber_status("inactive@example.test") == "bounced"


ATTACKER = "attacker@evil.example"
INJECTING = {
    "zoe@example.test": f"Zoë, {ATTACKER}, thanks",
    "ann@example.test": f"Ann Lee of the Harbour Letter Readers Association, {ATTACKER}, thanks",
    "bo@example.test": f'Bo" <{ATTACKER}>, "x',
}


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_a_name_holding_an_address_never_adds_a_recipient(
    kind: str, server, tmp_path: Path
) -> None:
    issue = issue_for(kind, tmp_path / "d.db", list(INJECTING), names=INJECTING)
    report = await run(issue, backend(kind, server.url))
    assert report.sent == 3, report.reasons
    # The fake APIs parse recipient fields as each provider does (Postmark's To and
    # Resend's to as address lists, Mailgun's to one address each, SendGrid's email).
    assert dict(server.state.delivered) == dict.fromkeys(INJECTING, 1)
    for email, name in INJECTING.items():
        if kind in BATCHING:
            assert display_name(server.state.received[email]["to"]) == name


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_a_text_only_message_goes_out_with_its_text(kind: str, server) -> None:
    from datetime import UTC, datetime

    from digest.models import Subscriber
    from digest.personalize import standalone

    message = standalone(
        Subscriber(7, "zoe@example.test", f"Zoë, {ATTACKER}"),
        sender="Weekly Digest <news@digest.test>",
        subject="Confirm your subscription to Weekly",
        text="Hello Zoë,\n\nTo confirm, open https://news.digest.test/confirm/x\n",
        date=datetime(2026, 11, 22, 7, tzinfo=UTC),
        message_id="<confirm.1@digest.test>",
        headers=(("Auto-Submitted", "auto-generated"),),
    )
    async with backend(kind, server.url) as api:
        [delivery] = await api.send([message])
    assert delivery.status == "sent", delivery.error
    assert dict(server.state.delivered) == {"zoe@example.test": 1}
    assert server.state.problems == []
    if kind in BATCHING:
        got = server.state.received["zoe@example.test"]
        assert got["text"] == message.text and not got["html"]
        assert got["headers"]["Auto-Submitted"] == "auto-generated"
    else:
        _, item = server.state.requests[0]
        assert message.text in item.values() and "confirm/x" in message.text


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_429_with_retry_after_slows_down_and_retries(
    kind: str, server, tmp_path: Path
) -> None:
    server.state.script.append(
        JSONResponse({"message": "Too many requests"}, 429, headers={"Retry-After": "1"})
    )
    issue = issue_for(kind, tmp_path / "d.db", emails(3))
    api = backend(kind, server.url, connections=1)
    report = await run(issue, api)
    assert report.sent == 3
    assert api.limiter.throttle_count == 1
    assert set(server.state.delivered.values()) == {1}


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_server_errors_are_retried(kind: str, server, tmp_path: Path) -> None:
    server.state.script.extend([Response("upstream", 502), Response("oops", 503)])
    issue = issue_for(kind, tmp_path / "d.db", emails(2))
    report = await run(issue, backend(kind, server.url, connections=1))
    assert report.sent == 2 and set(server.state.delivered.values()) == {1}


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_html_instead_of_json_is_reported_and_nothing_marked_sent(
    kind: str, server, tmp_path: Path
) -> None:
    if kind == "sendgrid":  # SendGrid's success has no body; its errors are JSON
        server.state.script.append(HTMLResponse("<html><body>Bad gateway</body></html>", 400))
    else:
        server.state.script.append(HTMLResponse("<html><body>Maintenance</body></html>", 200))
    issue = issue_for(kind, tmp_path / "d.db", emails(1))
    report = await run(issue, backend(kind, server.url), SendOptions(max_attempts=1))
    row = issue.rows()["reader0@example.test"]
    assert row.status == "failed" and report.sent == 0
    assert "instead of JSON" in row.error and "text/html" in row.error


@pytest.mark.parametrize("kind", PROVIDERS)
async def test_wrong_key_stops_the_send_with_a_sentence(
    kind: str, server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_API_KEY", "wrong")
    issue = issue_for(kind, tmp_path / "d.db", emails(4))
    with pytest.raises(SendAborted, match="refused the credentials"):
        await run(issue, backend(kind, server.url))
    assert set(issue.statuses().values()) == {"queued"}
    assert not server.state.delivered


async def test_missing_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("T_API_KEY")
    with pytest.raises(ConfigError, match=r"\$T_API_KEY, which is not set"):
        await backend("resend", "http://127.0.0.1:9").open()


async def test_resend_idempotency_key_makes_a_repeated_batch_a_no_op(
    server, tmp_path: Path
) -> None:
    issue = issue_for("resend", tmp_path / "d.db", emails(3))
    api = backend("resend", server.url)
    from digest.models import Subscriber

    messages = [issue.factory.build(Subscriber(id=i + 1, email=e)) for i, e in enumerate(emails(3))]
    async with api:
        first = await api.send(messages)
        again = await api.send(messages)  # a crashed run sending the same batch again
    assert [d.provider_id for d in first] == [d.provider_id for d in again]
    assert set(server.state.delivered.values()) == {1}


async def test_injected_client_is_used_and_left_open(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": "r-1"}]})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    issue = issue_for("resend", tmp_path / "d.db", emails(1))
    config = Config.model_validate(
        {"backends": {"api": {"type": "resend", "api_key_env": "T_API_KEY"}}}
    ).backends["api"]
    from digest.backends.resend import ResendBackend

    async with ResendBackend("api", config, client=client) as api:
        await send_issue(issue.store, issue.issue_id, issue.factory, api, options=FAST)
    assert seen[0].url == "https://api.resend.com/emails/batch"
    assert not client.is_closed
    await client.aclose()


# -- SendGrid and Mailgun: one request per 1,000 recipients, values filled in by the provider


class MimeView(TypedDict):
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    name: str


def mime_view(issue: QueuedIssue, email: str, name: str = "") -> MimeView:
    """What the SMTP/outbox message of ``email`` shows a reader: bodies and headers."""
    from digest.models import Subscriber

    row = issue.rows()[email]
    built = issue.factory.build(Subscriber(id=row.subscriber_id, email=email, name=name))
    parsed = message_from_bytes(built.data, policy=policy.default)
    return {
        "subject": str(parsed["Subject"]),
        "text": body_text(parsed, "plain").replace("\r\n", "\n"),
        "html": body_text(parsed, "html").replace("\r\n", "\n"),
        "headers": {
            name: " ".join(str(parsed[name]).split())
            for name in ("Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")
        },
        "name": to_address(parsed).display_name,
    }


def display_name(to: dict[str, str]) -> str:
    """The name a mail client shows for a ``to`` the provider got (SendGrid's quoted form undone)."""
    from email.utils import parseaddr

    name = to.get("name", "")
    return parseaddr(f"{name} <x@x.test>")[0] if name.startswith('"') else name


@pytest.mark.parametrize("kind", BATCHING)
async def test_2500_recipients_go_out_in_3_calls(kind: str, server, tmp_path: Path) -> None:
    issue = issue_for(kind, tmp_path / "d.db", emails(2500))
    api = backend(kind, server.url, connections=2)
    report = await run(issue, api)
    assert report.sent == 2500, report.reasons
    assert sorted(server.state.batch_sizes) == [500, 1000, 1000]
    assert server.state.problems == []
    assert len(server.state.delivered) == 2500 and set(server.state.delivered.values()) == {1}
    assert report.in_flight_window == 2 * 1000
    ids = {row.provider_id for row in issue.rows().values()}
    assert len(ids) == 3  # one id per request, recorded for each of its recipients


NAMES = {
    "plain@example.test": "Ann Lee",
    "tricky@example.test": 'Zoë "Z" O\'Brien, Jr.; <Ω> & Co %20',
    "noname@example.test": "",
}


@pytest.mark.parametrize("kind", BATCHING)
async def test_each_reader_gets_what_the_smtp_message_shows(
    kind: str, server, tmp_path: Path
) -> None:
    issue = issue_for(kind, tmp_path / "d.db", list(NAMES), names=NAMES)
    report = await run(issue, backend(kind, server.url))
    assert report.sent == 3, report.reasons
    assert server.state.problems == [] and server.state.batch_sizes == [3]
    for email, name in NAMES.items():
        got, want = server.state.received[email], mime_view(issue, email, name)
        assert got["text"].replace("\r\n", "\n") == want["text"]
        assert got["html"].replace("\r\n", "\n") == want["html"]
        assert got["subject"] == want["subject"]
        # Each build draws a new Message-ID: the one sent is the one the ledger kept.
        want["headers"]["Message-ID"] = issue.rows()[email].message_id
        assert {k: got["headers"][k] for k in want["headers"]} == want["headers"]
        assert display_name(got["to"]) == want["name"] == " ".join(name.split())
    tricky = server.state.received["tricky@example.test"]
    assert "Hi Zoë &quot;Z&quot; O&#x27;Brien, Jr.; &lt;Ω&gt; &amp; Co %20," in tricky["html"]
    assert 'Hi Zoë "Z" O\'Brien, Jr.; <Ω> & Co %20,' in tricky["text"]


@pytest.mark.parametrize("kind", BATCHING)
async def test_a_bad_address_fails_alone_and_the_batch_goes_out(
    kind: str, server, tmp_path: Path
) -> None:
    good = emails(5)
    # "nodot" fails our check before sending; "rejected" passes it and only the
    # provider refuses it, for the whole request.
    addresses = [*good[:2], "bad@nodot", *good[2:4], "rejected@example.test", good[4]]
    issue = issue_for(kind, tmp_path / "d.db", addresses)
    report = await run(issue, backend(kind, server.url), SendOptions(max_attempts=1))
    assert report.sent == 5 and report.failed == 2, report.reasons
    rows = issue.rows()
    assert "no dot" in rows["bad@nodot"].error
    assert rows["rejected@example.test"].status == "failed"
    assert "valid address" in rows["rejected@example.test"].error
    assert all(rows[e].status == "sent" for e in good)
    assert dict(server.state.delivered) == dict.fromkeys(good, 1)
    assert server.state.problems == []


async def test_sendgrid_substitutions_over_10000_bytes_go_in_a_request_of_their_own(
    server, tmp_path: Path
) -> None:
    long_name = "Bartholomew " * 500  # 6,000 bytes, twice (text and HTML): over the limit
    addresses = emails(4)
    issue = issue_for("sendgrid", tmp_path / "d.db", addresses, names={addresses[1]: long_name})
    report = await run(issue, backend("sendgrid", server.url))
    assert report.sent == 4
    assert sorted(server.state.batch_sizes) == [1, 3] and server.state.problems == []
    got, want = server.state.received[addresses[1]], mime_view(issue, addresses[1], long_name)
    assert got["text"].replace("\r\n", "\n") == want["text"]
    assert got["headers"]["List-Unsubscribe"] == want["headers"]["List-Unsubscribe"]


async def test_sendgrid_400_about_the_request_fails_the_batch_once(server, tmp_path: Path) -> None:
    server.state.script.append(
        JSONResponse(
            {
                "errors": [
                    {
                        "message": "The from address does not match a verified Sender Identity.",
                        "field": "from",
                        "help": None,
                    }
                ]
            },
            400,
        )
    )
    issue = issue_for("sendgrid", tmp_path / "d.db", emails(3))
    report = await run(issue, backend("sendgrid", server.url))
    assert report.failed == 3 and not server.state.delivered
    assert all(
        "verified Sender Identity" in row.error and row.attempts == 1
        for row in issue.rows().values()
    )


@pytest.mark.parametrize("kind", BATCHING)
async def test_413_payload_too_large_halves_the_request(kind: str, server, tmp_path: Path) -> None:
    server.state.script.append(Response("Payload Too Large", 413, media_type="text/plain"))
    issue = issue_for(kind, tmp_path / "d.db", emails(10))
    report = await run(issue, backend(kind, server.url), SendOptions(max_attempts=1))
    assert report.sent == 10
    assert server.state.batch_sizes == [5, 5] and set(server.state.delivered.values()) == {1}


async def test_mailgun_sends_content_holding_its_own_syntax_as_built(
    server, tmp_path: Path
) -> None:
    addresses = emails(3)
    names = {addresses[0]: "%recipient.h:List-Unsubscribe%"}
    issue = issue_for("mailgun", tmp_path / "d.db", addresses, names=names)
    report = await run(issue, backend("mailgun", server.url))
    assert report.sent == 3 and server.state.batch_sizes == [2, 1] and len(server.state.mime) == 1
    parsed = message_from_bytes(server.state.mime[0], policy=policy.default)
    assert "Hi %recipient.h:List-Unsubscribe%," in body_text(parsed, "plain")
