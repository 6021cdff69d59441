"""Provider webhooks against a real server: each provider's authentication, the events
that suppress, and refused requests (malformed, unsigned, forged, stale, replayed)
that change nothing and are logged.

Payloads follow each provider's documented format; the keys are made here (a
SendGrid-style P-256 key, an SNS-style RSA certificate) since the providers' own
cannot sign test requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import select

from digest.store.tables import SoftBounceRow, SubscriberRow, SuppressionRow, WebhookEventRow
from digest.webhooks import PROVIDERS
from digest.webhooks.ses import sns_string_to_sign
from tests.support.sns import sns_certificate
from tests.support.subscribers import SECRET, served_demo, status_of

AVA = "ava.lindqvist@example.org"
SAM = "samuel.okoye@example.org"
ZOE = "zoe.angstrom@example.com"
POSTMARK_TOKEN = "pm-shared-secret-123"
MAILGUN_KEY = "key-mailgun-signing-456"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-bounces"


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def served(tmp_path: Path, monkeypatch, sendgrid_key, sns_key):
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_POSTMARK_WEBHOOK_TOKEN", POSTMARK_TOKEN)
    monkeypatch.setenv("DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY", MAILGUN_KEY)
    (tmp_path / "sns.pem").write_bytes(sns_certificate(sns_key))
    public_der = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    extra = (
        "web:\n"
        f"  sendgrid_public_key: {base64.b64encode(public_der).decode()}\n"
        "  sns_certificate: sns.pem\n"
        f"  sns_topic_arns: ['{TOPIC}']\n"
        "  soft_bounce_limit: 3\n"
    )
    with served_demo(tmp_path, extra_yaml=extra) as (server, _, store):
        from digest.subscribers import add_subscriber

        add_subscriber(store, "other", AVA)
        yield server, store


def snapshot(store) -> dict[str, Any]:
    """Everything a webhook may change."""
    with store.session() as session:
        return {
            "statuses": sorted(
                session.execute(select(SubscriberRow.id, SubscriberRow.status)).all()
            ),
            "suppressions": session.scalars(select(SuppressionRow.email_key)).all(),
            "soft": session.execute(select(SoftBounceRow.email_key, SoftBounceRow.count)).all(),
            "seen": session.scalars(select(WebhookEventRow.event_id)).all(),
        }


def suppressed(store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(SuppressionRow.email_key)))


def assert_refused(
    server, store, caplog, provider: str, status: int, **request: Any
) -> httpx.Response:
    before = snapshot(store)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="digest.web.webhooks"):
        response = httpx.post(f"{server.url}/webhooks/{provider}", **request)
        assert response.status_code == status, response.text
    assert snapshot(store) == before
    assert any(f"webhook {provider}" in r.getMessage() for r in caplog.records)
    return response


# -- Postmark ---------------------------------------------------------------------------


def postmark_bounce(address: str, kind: str = "HardBounce", record_id: int = 4323372036) -> dict:
    return {
        "RecordType": "Bounce",
        "ID": record_id,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "MessageID": str(uuid.uuid4()),
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Email": address,
        "From": "news@example.org",
        "BouncedAt": "2026-11-20T16:33:54.9070259Z",
    }


def test_postmark_hard_bounce_suppresses_the_address_on_every_list(served) -> None:
    server, store = served
    response = httpx.post(
        f"{server.url}/webhooks/postmark",
        json=postmark_bounce(AVA),
        headers={"X-Digest-Webhook-Token": POSTMARK_TOKEN},
    )
    assert response.status_code == 200
    assert response.json()["outcomes"] == ["suppressed"]
    assert suppressed(store) == {AVA}
    assert status_of(store, AVA, "demo") == "bounced"
    assert status_of(store, AVA, "other") == "bounced"


def test_postmark_spam_complaint_marks_complained(served) -> None:
    server, store = served
    record = {
        "RecordType": "SpamComplaint",
        "ID": 42,
        "Type": "SpamComplaint",
        "Email": SAM,
        "BouncedAt": "2026-11-20T16:33:54Z",
    }
    response = httpx.post(
        f"{server.url}/webhooks/postmark",
        json=record,
        headers={"X-Digest-Webhook-Token": POSTMARK_TOKEN},
    )
    assert response.status_code == 200
    assert status_of(store, SAM) == "complained"


def test_postmark_basic_auth_when_configured(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    monkeypatch.setenv("DIGEST_POSTMARK_WEBHOOK_USER", "hook")
    monkeypatch.setenv("DIGEST_POSTMARK_WEBHOOK_PASSWORD", "s3cret")
    with served_demo(tmp_path) as (server, _, store):
        url = f"{server.url}/webhooks/postmark"
        assert httpx.post(url, json=postmark_bounce(AVA), auth=("hook", "wrong")).status_code == 401
        assert status_of(store, AVA) == "active"
        assert (
            httpx.post(url, json=postmark_bounce(AVA), auth=("hook", "s3cret")).status_code == 200
        )
        assert status_of(store, AVA) == "bounced"


def test_postmark_refusals(served, caplog) -> None:
    server, store = served
    good = {"X-Digest-Webhook-Token": POSTMARK_TOKEN}
    assert_refused(server, store, caplog, "postmark", 401, json=postmark_bounce(AVA))
    assert_refused(
        server,
        store,
        caplog,
        "postmark",
        401,
        json=postmark_bounce(AVA),
        headers={"X-Digest-Webhook-Token": POSTMARK_TOKEN + "x"},
    )
    assert_refused(server, store, caplog, "postmark", 400, content=b"{not json", headers=good)
    assert_refused(server, store, caplog, "postmark", 400, json=["a list"], headers=good)
    no_email = postmark_bounce(AVA)
    del no_email["Email"]
    assert_refused(server, store, caplog, "postmark", 400, json=no_email, headers=good)
    ok = httpx.post(
        f"{server.url}/webhooks/postmark", json=postmark_bounce(ZOE, "SoftBounce"), headers=good
    )
    assert ok.status_code == 200
    assert_refused(
        server,
        store,
        caplog,
        "postmark",
        409,
        json=postmark_bounce(ZOE, "SoftBounce"),
        headers=good,
    )


def test_unknown_provider_and_unconfigured_provider(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DIGEST_SECRET_KEY", SECRET)
    with served_demo(tmp_path) as (server, _, store):
        assert httpx.post(f"{server.url}/webhooks/nope", json={}).status_code == 404
        assert set(PROVIDERS) >= {"postmark", "sendgrid", "mailgun", "ses"}
        for provider in PROVIDERS:  # every registered parser refuses until it has its keys
            assert httpx.post(f"{server.url}/webhooks/{provider}", json={}).status_code == 403
        assert httpx.get(f"{server.url}/webhooks/postmark").status_code == 405
        assert status_of(store, AVA) == "active"


# -- SendGrid ---------------------------------------------------------------------------


def sendgrid_request(key, events: object, timestamp: int | None = None) -> dict[str, Any]:
    body = json.dumps(events).encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "content": body,
        "headers": {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    }


def sendgrid_events() -> list[dict]:
    now = int(time.time())
    return [
        {"email": ZOE, "timestamp": now, "event": "delivered", "sg_event_id": "d1"},
        {
            "email": AVA,
            "timestamp": now,
            "event": "bounce",
            "type": "bounce",
            "reason": "550 5.1.1 mailbox does not exist",
            "sg_event_id": "b1",
        },
        {"email": SAM, "timestamp": now, "event": "spamreport", "sg_event_id": "s1"},
        {"email": ZOE, "timestamp": now, "event": "bounce", "type": "blocked", "sg_event_id": "b2"},
    ]


def test_sendgrid_signed_batch_is_applied(served, sendgrid_key) -> None:
    server, store = served
    response = httpx.post(
        f"{server.url}/webhooks/sendgrid", **sendgrid_request(sendgrid_key, sendgrid_events())
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"] == ["suppressed", "suppressed", "counted"]
    assert status_of(store, AVA) == "bounced"
    assert status_of(store, SAM) == "complained"
    assert status_of(store, ZOE) == "active"  # one soft bounce is only counted


def test_sendgrid_refusals(served, sendgrid_key, caplog) -> None:
    server, store = served
    signed = sendgrid_request(sendgrid_key, sendgrid_events())
    unsigned = {"content": signed["content"], "headers": {"Content-Type": "application/json"}}
    assert_refused(server, store, caplog, "sendgrid", 401, **unsigned)
    tampered = {**signed, "content": signed["content"].replace(b"bounce", b"bounc3")}
    assert_refused(server, store, caplog, "sendgrid", 401, **tampered)
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert_refused(
        server, store, caplog, "sendgrid", 401, **sendgrid_request(other_key, sendgrid_events())
    )
    stale = sendgrid_request(sendgrid_key, sendgrid_events(), int(time.time()) - 3600)
    assert_refused(server, store, caplog, "sendgrid", 401, **stale)
    assert_refused(
        server,
        store,
        caplog,
        "sendgrid",
        400,
        **sendgrid_request(sendgrid_key, {"not": "a list"}),
    )
    assert httpx.post(f"{server.url}/webhooks/sendgrid", **signed).status_code == 200
    assert_refused(server, store, caplog, "sendgrid", 409, **signed)
    # The same events re-signed later are still the same events.
    assert_refused(
        server, store, caplog, "sendgrid", 409, **sendgrid_request(sendgrid_key, sendgrid_events())
    )


# -- Mailgun ----------------------------------------------------------------------------


def mailgun_body(
    address: str,
    event: str = "failed",
    severity: str = "permanent",
    *,
    key: str = MAILGUN_KEY,
    timestamp: int | None = None,
    token: str | None = None,
) -> dict:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    token = token or uuid.uuid4().hex * 2
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": stamp, "token": token, "signature": signature},
        "event-data": {
            "id": uuid.uuid4().hex,
            "timestamp": float(stamp),
            "event": event,
            "severity": severity,
            "reason": "bounce" if event == "failed" else "",
            "recipient": address,
            "delivery-status": {"code": 550, "description": "No such mailbox"},
        },
    }


def test_mailgun_permanent_failure_and_complaint(served) -> None:
    server, store = served
    url = f"{server.url}/webhooks/mailgun"
    assert httpx.post(url, json=mailgun_body(AVA)).status_code == 200
    assert httpx.post(url, json=mailgun_body(SAM, "complained", "")).status_code == 200
    assert status_of(store, AVA) == "bounced"
    assert status_of(store, SAM) == "complained"
    assert suppressed(store) == {AVA, SAM}


def test_soft_bounces_are_counted_and_suppress_at_the_limit(served) -> None:
    server, store = served
    url = f"{server.url}/webhooks/mailgun"
    outcomes = [
        httpx.post(url, json=mailgun_body(ZOE, severity="temporary")).json()["outcomes"]
        for _ in range(3)
    ]
    assert outcomes == [["counted"], ["counted"], ["suppressed"]]
    assert status_of(store, ZOE) == "bounced"
    assert ZOE in suppressed(store)


def test_mailgun_refusals(served, caplog) -> None:
    server, store = served
    assert_refused(server, store, caplog, "mailgun", 401, json=mailgun_body(AVA, key="wrong"))
    unsigned = mailgun_body(AVA)
    del unsigned["signature"]
    assert_refused(server, store, caplog, "mailgun", 401, json=unsigned)
    forged = mailgun_body(AVA)
    forged["signature"]["timestamp"] = str(int(forged["signature"]["timestamp"]) + 1)
    assert_refused(server, store, caplog, "mailgun", 401, json=forged)
    stale = mailgun_body(AVA, timestamp=int(time.time()) - 7200)
    assert_refused(server, store, caplog, "mailgun", 401, json=stale)
    assert_refused(server, store, caplog, "mailgun", 400, content=b"\xff\xfe garbage")
    first = mailgun_body(ZOE, severity="temporary", token="a" * 50)
    assert httpx.post(f"{server.url}/webhooks/mailgun", json=first).status_code == 200
    assert_refused(server, store, caplog, "mailgun", 409, json=first)


# -- Amazon SES via SNS -----------------------------------------------------------------


def sns_message(
    key: rsa.RSAPrivateKey,
    notification: dict | None,
    *,
    kind: str = "Notification",
    version: str = "1",
    topic: str = TOPIC,
    when: datetime | None = None,
) -> dict:
    message: dict[str, Any] = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Message": json.dumps(notification)
        if notification is not None
        else "You have chosen to subscribe.",
        "Timestamp": (when or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "SignatureVersion": version,
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
    }
    if kind == "Notification":
        message["Subject"] = "Amazon SES Email Event Notification"
    else:
        message["Token"] = "2336412f37fb687f5d51e6e2425c464de"
        message["SubscribeURL"] = (
            "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + topic
        )
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(sns_string_to_sign(message), padding.PKCS1v15(), algorithm)
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def ses_bounce(address: str, kind: str = "Permanent") -> dict:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": address, "status": "5.1.1"}],
            "timestamp": "2026-11-20T16:33:54.000Z",
        },
        "mail": {"messageId": "0000014a-xyz", "destination": [address]},
    }


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_through_sns_is_verified_and_applied(served, sns_key, version) -> None:
    server, store = served
    response = httpx.post(
        f"{server.url}/webhooks/ses",
        json=sns_message(sns_key, ses_bounce(AVA), version=version),
        headers={"x-amz-sns-message-type": "Notification"},
    )
    assert response.status_code == 200, response.text
    assert status_of(store, AVA) == "bounced"


def test_ses_complaint(served, sns_key) -> None:
    server, store = served
    complaint = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": f"Sam <{SAM}>"}],
            "complaintFeedbackType": "abuse",
        },
    }
    response = httpx.post(f"{server.url}/webhooks/ses", json=sns_message(sns_key, complaint))
    assert response.status_code == 200
    assert status_of(store, SAM) == "complained"


def test_ses_refusals(served, sns_key, caplog) -> None:
    server, store = served
    signed = sns_message(sns_key, ses_bounce(AVA))
    unsigned = {k: v for k, v in signed.items() if k != "Signature"}
    assert_refused(server, store, caplog, "ses", 401, json=unsigned)
    swapped = {**signed, "Message": json.dumps(ses_bounce(SAM))}
    assert_refused(server, store, caplog, "ses", 401, json=swapped)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert_refused(server, store, caplog, "ses", 401, json=sns_message(other, ses_bounce(AVA)))
    assert_refused(
        server,
        store,
        caplog,
        "ses",
        403,
        json=sns_message(sns_key, ses_bounce(AVA), topic="arn:aws:sns:eu-west-1:1:other"),
    )
    old = sns_message(sns_key, ses_bounce(AVA), when=datetime.now(UTC) - timedelta(hours=2))
    assert_refused(server, store, caplog, "ses", 401, json=old)
    assert_refused(server, store, caplog, "ses", 400, json={**signed, "Type": "Weird"})
    assert_refused(server, store, caplog, "ses", 400, json={**signed, "SignatureVersion": "9"})
    assert httpx.post(f"{server.url}/webhooks/ses", json=signed).status_code == 200
    assert_refused(server, store, caplog, "ses", 409, json=signed)


def test_sns_subscription_confirmation_is_logged_and_changes_no_subscriber(
    served, sns_key, caplog
) -> None:
    server, store = served
    before = snapshot(store)["statuses"]
    with caplog.at_level(logging.WARNING, logger="digest.web.webhooks"):
        response = httpx.post(
            f"{server.url}/webhooks/ses",
            json=sns_message(sns_key, None, kind="SubscriptionConfirmation"),
        )
    assert response.status_code == 200
    assert snapshot(store)["statuses"] == before
    assert any("ConfirmSubscription" in r.getMessage() for r in caplog.records)


# -- malformed requests: a 4xx, never a 500 ---------------------------------------------


def test_signatures_that_are_not_ascii_or_not_strings_are_refused_with_a_4xx(
    served, sns_key, sendgrid_key, caplog
) -> None:
    server, store = served
    for value in ("é" * 64, "\u0663" * 64):
        body = mailgun_body(AVA)
        body["signature"]["signature"] = value
        assert_refused(server, store, caplog, "mailgun", 401, json=body)
    for wrong in (12345, ["a"], {"a": 1}, None, True):
        forged = sns_message(sns_key, ses_bounce(AVA))
        forged["Signature"] = wrong
        assert_refused(server, store, caplog, "ses", 401, json=forged)
    # A lone surrogate is valid JSON but no text: refused before any signature check.
    lone = json.dumps(mailgun_body(AVA)).replace('"timestamp": "', '"timestamp": "\\ud800', 1)
    assert_refused(server, store, caplog, "mailgun", 400, content=lone.encode())
    for version in ("é", 7):
        message = sns_message(sns_key, ses_bounce(AVA))
        message["SignatureVersion"] = version
        assert_refused(server, store, caplog, "ses", 400, json=message)
    signed = sendgrid_request(sendgrid_key, sendgrid_events())
    headers = {
        **signed["headers"],
        "X-Twilio-Email-Event-Webhook-Signature": "é".encode("latin-1") * 20,
    }
    assert_refused(
        server, store, caplog, "sendgrid", 401, content=signed["content"], headers=headers
    )
    assert_refused(
        server,
        store,
        caplog,
        "postmark",
        401,
        json=postmark_bounce(AVA),
        headers={"X-Digest-Webhook-Token": "é".encode("latin-1") * 8},
    )


def test_signed_requests_with_fields_of_the_wrong_type_are_refused_with_a_4xx(
    served, sns_key, sendgrid_key, caplog
) -> None:
    server, store = served
    for notification in (
        {"notificationType": "Bounce", "bounce": ["not", "an", "object"]},
        {"notificationType": "Complaint", "complaint": "text"},
        {"notificationType": "Bounce", "bounce": {"bouncedRecipients": {"a": 1}}},
        {
            "notificationType": "Bounce",
            "bounce": {"bouncedRecipients": [{"emailAddress": "x\x00y@example.org"}]},
        },
    ):
        assert_refused(server, store, caplog, "ses", 400, json=sns_message(sns_key, notification))
    events = [{"event": "bounce", "email": ["a@example.org"], "sg_event_id": "x"}]
    assert_refused(server, store, caplog, "sendgrid", 400, **sendgrid_request(sendgrid_key, events))
    far = mailgun_body(AVA, timestamp=10**400)  # signed, but past any clock
    far["event-data"]["timestamp"] = 0
    assert_refused(server, store, caplog, "mailgun", 401, json=far)
    for record in (
        {**postmark_bounce(AVA), "ID": {"nested": 1}},
        {**postmark_bounce(AVA), "Email": "ava\x00@example.org"},
    ):
        assert_refused(
            server,
            store,
            caplog,
            "postmark",
            400,
            json=record,
            headers={"X-Digest-Webhook-Token": POSTMARK_TOKEN},
        )
