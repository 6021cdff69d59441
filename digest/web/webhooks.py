"""Provider webhooks for bounces and complaints: ``POST /webhooks/<provider>``.

Each provider's request is authenticated the way that provider signs it, before
anything is read from it:

========== ===============================================================================
postmark   HTTP basic auth (``DIGEST_POSTMARK_WEBHOOK_USER`` / ``..._PASSWORD``) or a shared
           secret in the ``X-Digest-Webhook-Token`` header (``DIGEST_POSTMARK_WEBHOOK_TOKEN``)
sendgrid   Signed Event Webhook: ECDSA P-256/SHA-256 over timestamp + body, verified with
           the public key in ``web.sendgrid_public_key``
mailgun    HMAC-SHA256 of timestamp + token keyed by ``DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY``
ses        Amazon SNS message signature (versions 1 and 2) verified with the certificate
           named in ``web.sns_certificate`` (fetching it at run time would trust the network)
========== ===============================================================================

Signed timestamps older than ``web.webhook_max_age_seconds`` are refused, and each
provider event id (Mailgun: signing token; SendGrid: event ids and the signature) is
accepted once: a replay is refused with 409. A refused request gets a 4xx, is
logged, and changes nothing. Hard bounces and complaints suppress the address on
every list; soft bounces are counted and suppress it at ``web.soft_bounce_limit``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..config import Config
from ..errors import ConfigError
from ..store import Store
from ..subscriptions import apply_provider_events

log = logging.getLogger("digest.web.webhooks")

POSTMARK_USER_ENV = "DIGEST_POSTMARK_WEBHOOK_USER"
POSTMARK_PASSWORD_ENV = "DIGEST_POSTMARK_WEBHOOK_PASSWORD"
POSTMARK_TOKEN_ENV = "DIGEST_POSTMARK_WEBHOOK_TOKEN"
MAILGUN_KEY_ENV = "DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY"
TOKEN_HEADER = "x-digest-webhook-token"
SENDGRID_SIGNATURE = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP = "x-twilio-email-event-webhook-timestamp"


class Rejected(Exception):
    """A webhook request that is refused: ``status`` (4xx) and the logged reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """One bounce or complaint: ``kind`` is ``hard``, ``soft`` or ``complaint``."""

    email: str
    kind: str
    detail: str


@dataclass(slots=True)
class Parsed:
    """What a verified request says, and the ids that must not have been seen before."""

    events: list[Event] = field(default_factory=list)
    once: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class WebhookKeys:
    """The credentials and keys each provider's requests are checked against."""

    postmark_user: str | None
    postmark_password: str | None
    postmark_token: str | None
    mailgun_key: bytes | None
    sendgrid_key: ec.EllipticCurvePublicKey | None
    sns_key: rsa.RSAPublicKey | None
    sns_topics: tuple[str, ...]
    max_age: int


def _sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    # SendGrid shows the key as base64 DER; a PEM block is accepted too.
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise ConfigError(
            f"web.sendgrid_public_key is not a public key (base64 DER or PEM): {exc}."
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("web.sendgrid_public_key must be an ECDSA (P-256) public key.")
    return key


def _sns_key(config: Config, where: str) -> rsa.RSAPublicKey:
    if "BEGIN CERTIFICATE" in where:
        pem = where.encode()
    else:
        path = Path(config.resolve(where))
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"web.sns_certificate: {path} cannot be read ({exc.strerror})."
            ) from None
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError as exc:
        raise ConfigError(f"web.sns_certificate is not a PEM certificate: {exc}.") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError("web.sns_certificate must hold an RSA certificate, as SNS uses.")
    return key


def load_keys(config: Config, environ: Mapping[str, str] = os.environ) -> WebhookKeys:
    """The webhook credentials from the environment and keys from ``config.web``;
    ``ConfigError`` when a configured key cannot be used."""
    web = config.web
    mailgun = environ.get(MAILGUN_KEY_ENV)
    return WebhookKeys(
        postmark_user=environ.get(POSTMARK_USER_ENV) or None,
        postmark_password=environ.get(POSTMARK_PASSWORD_ENV) or None,
        postmark_token=environ.get(POSTMARK_TOKEN_ENV) or None,
        mailgun_key=mailgun.encode() if mailgun else None,
        sendgrid_key=_sendgrid_key(web.sendgrid_public_key) if web.sendgrid_public_key else None,
        sns_key=_sns_key(config, web.sns_certificate) if web.sns_certificate else None,
        sns_topics=tuple(web.sns_topic_arns),
        max_age=web.webhook_max_age_seconds,
    )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, f"the body is not JSON ({exc})") from None


def _fresh(timestamp: float, now: float, max_age: int) -> None:
    # Also refuses a timestamp from the future beyond the window (a clock far off, or
    # a request prepared in advance to be replayed later).
    if abs(now - timestamp) > max_age:
        raise Rejected(
            401, f"the signed timestamp is {int(now - timestamp)} s old (stale or replayed)"
        )


def _address(value: Any) -> str:
    if not isinstance(value, str) or "@" not in value:
        raise Rejected(400, "an event has no recipient address")
    return parseaddr(value)[1] or value.strip()


# -- Postmark ---------------------------------------------------------------------------

_POSTMARK_KINDS = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "ManuallyDeactivated": "hard",
    "SpamComplaint": "complaint",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
}


def parse_postmark(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """A Postmark bounce or spam-complaint webhook (one record per request)."""
    if keys.postmark_user and keys.postmark_password:
        expected = base64.b64encode(f"{keys.postmark_user}:{keys.postmark_password}".encode())
        given = request.headers.get("authorization", "").removeprefix("Basic ").strip().encode()
        if not hmac.compare_digest(given, expected):
            raise Rejected(401, "wrong or missing basic-auth credentials")
    elif keys.postmark_token:
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(given, keys.postmark_token.encode()):
            raise Rejected(401, f"wrong or missing {TOKEN_HEADER} header")
    else:
        raise Rejected(
            403, f"Postmark webhooks are not configured (set {POSTMARK_TOKEN_ENV} or basic auth)"
        )
    record = _json(body)
    if not isinstance(record, dict) or "RecordType" not in record:
        raise Rejected(400, "not a Postmark webhook record (no RecordType)")
    kind_name = record.get("Type") if record["RecordType"] == "Bounce" else record["RecordType"]
    record_id = record.get("ID")
    if record_id is None:
        raise Rejected(400, "the Postmark record has no ID")
    parsed = Parsed(once=[f"{record['RecordType']}:{record_id}"])
    kind = _POSTMARK_KINDS.get(str(kind_name))
    if kind is not None:
        detail = f"postmark {kind_name}: {str(record.get('Description', ''))[:200]}"
        parsed.events.append(Event(_address(record.get("Email")), kind, detail))
    return parsed


# -- SendGrid ---------------------------------------------------------------------------


def parse_sendgrid(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """A SendGrid Signed Event Webhook batch (a JSON array of events)."""
    if keys.sendgrid_key is None:
        raise Rejected(403, "SendGrid webhooks are not configured (set web.sendgrid_public_key)")
    signature = request.headers.get(SENDGRID_SIGNATURE)
    timestamp = request.headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        raise Rejected(401, "the request is not signed (no signature or timestamp header)")
    try:
        keys.sendgrid_key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Rejected(401, "the ECDSA signature does not match") from None
    try:
        _fresh(int(timestamp), now, keys.max_age)
    except ValueError:
        raise Rejected(400, "the timestamp header is not a number") from None
    events = _json(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Rejected(400, "a SendGrid webhook body is a JSON array of event objects")
    parsed = Parsed(once=["signature:" + hashlib.sha256(signature.encode()).hexdigest()])
    for event in events:
        name = event.get("event")
        if name == "bounce":
            kind = "soft" if event.get("type") == "blocked" else "hard"
        elif name == "spamreport":
            kind = "complaint"
        else:
            continue  # deliveries, opens, deferrals: nothing to do
        if event.get("sg_event_id"):
            parsed.once.append(f"event:{event['sg_event_id']}")
        detail = f"sendgrid {name}: {str(event.get('reason', ''))[:200]}"
        parsed.events.append(Event(_address(event.get("email")), kind, detail))
    return parsed


# -- Mailgun ----------------------------------------------------------------------------


def parse_mailgun(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """A Mailgun webhook (JSON with ``signature`` and ``event-data``)."""
    if keys.mailgun_key is None:
        raise Rejected(403, f"Mailgun webhooks are not configured (set {MAILGUN_KEY_ENV})")
    payload = _json(body)
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(k), str) for k in ("timestamp", "token", "signature")
    ):
        raise Rejected(401, "the request is not signed (no signature block)")
    expected = hmac.new(
        keys.mailgun_key,
        (signature["timestamp"] + signature["token"]).encode(),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, signature["signature"]):
        raise Rejected(401, "the HMAC signature does not match")
    try:
        _fresh(int(signature["timestamp"]), now, keys.max_age)
    except ValueError:
        raise Rejected(400, "the signed timestamp is not a number") from None
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise Rejected(400, "no event-data")
    parsed = Parsed(once=[f"token:{signature['token']}"])
    name = data.get("event")
    if name == "failed":
        kind = "hard" if data.get("severity") == "permanent" else "soft"
    elif name == "complained":
        kind = "complaint"
    else:
        return parsed
    reason = (
        data.get("delivery-status", {}).get("description", "")
        if isinstance(data.get("delivery-status"), dict)
        else ""
    )
    detail = f"mailgun {name}: {str(data.get('reason') or reason)[:200]}"
    parsed.events.append(Event(_address(data.get("recipient")), kind, detail))
    return parsed


# -- Amazon SES through SNS ---------------------------------------------------------------

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SNS_FIELDS["UnsubscribeConfirmation"] = _SNS_FIELDS["SubscriptionConfirmation"]


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical string SNS signs: ``key\\nvalue\\n`` for its fields, in order
    (``Subject`` only when present). ``Rejected`` for an unknown type or a missing field."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise Rejected(400, f"unknown SNS message type {message.get('Type')!r}")
    parts = []
    for name in fields:
        if name not in message:
            if name == "Subject":
                continue
            raise Rejected(400, f"the SNS message has no {name}")
        parts.append(f"{name}\n{message[name]}\n")
    return "".join(parts).encode()


def parse_ses(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """An SNS message carrying an SES bounce or complaint notification."""
    if keys.sns_key is None:
        raise Rejected(403, "SES webhooks are not configured (set web.sns_certificate)")
    message = _json(body)
    if not isinstance(message, dict):
        raise Rejected(400, "an SNS message is a JSON object")
    if not message.get("Signature"):
        raise Rejected(401, "the SNS message is not signed")
    version = str(message.get("SignatureVersion"))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        raise Rejected(400, f"unknown SNS SignatureVersion {version!r}")
    canonical = sns_string_to_sign(message)
    try:
        keys.sns_key.verify(
            base64.b64decode(message["Signature"], validate=True),
            canonical,
            padding.PKCS1v15(),
            algorithm,
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Rejected(401, "the SNS signature does not match") from None
    if keys.sns_topics and message.get("TopicArn") not in keys.sns_topics:
        raise Rejected(403, f"the topic {message.get('TopicArn')} is not in web.sns_topic_arns")
    try:
        sent_at = datetime.fromisoformat(str(message["Timestamp"]))
    except ValueError:
        raise Rejected(400, "the SNS Timestamp is not an ISO 8601 time") from None
    if sent_at.tzinfo is None:  # SNS writes UTC with a Z; never read it as local time
        sent_at = sent_at.replace(tzinfo=UTC)
    _fresh(sent_at.timestamp(), now, keys.max_age)
    parsed = Parsed(once=[f"message:{message['MessageId']}"])
    if message["Type"] != "Notification":
        # Confirming needs a request to AWS, which is the operator's decision to make.
        log.warning(
            "SNS %s for %s: to confirm, open %s",
            message["Type"],
            message.get("TopicArn"),
            message.get("SubscribeURL"),
        )
        return parsed
    notification = _json(str(message["Message"]).encode())
    if not isinstance(notification, dict):
        raise Rejected(400, "the SNS Message is not an SES notification object")
    kind_name = notification.get("notificationType") or notification.get("eventType")
    if kind_name == "Bounce":
        bounce = notification.get("bounce") or {}
        kind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        recipients = bounce.get("bouncedRecipients") or []
        detail = f"ses bounce {bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
    elif kind_name == "Complaint":
        complaint = notification.get("complaint") or {}
        kind = "complaint"
        recipients = complaint.get("complainedRecipients") or []
        detail = f"ses complaint {complaint.get('complaintFeedbackType', '')}".strip()
    else:
        return parsed
    if not isinstance(recipients, list) or not recipients:
        raise Rejected(400, "the SES notification names no recipient")
    for recipient in recipients:
        address = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        parsed.events.append(Event(_address(address), kind, detail))
    return parsed


PROVIDERS: dict[str, Callable[[Request, bytes, WebhookKeys, float], Parsed]] = {
    "postmark": parse_postmark,
    "sendgrid": parse_sendgrid,
    "mailgun": parse_mailgun,
    "ses": parse_ses,
}


def apply(store: Store, provider: str, parsed: Parsed, soft_limit: int) -> list[str]:
    """Apply the request's events and record its ids (``subscriptions.apply_provider_events``);
    ``Rejected`` (409) when any id was seen before, in which case nothing changes.
    Reads and writes the database: call it from a worker thread."""
    applied = apply_provider_events(
        store,
        provider,
        parsed.once,
        [(event.email, event.kind, event.detail) for event in parsed.events],
        soft_limit=soft_limit,
    )
    if applied.replay_of is not None:
        raise Rejected(409, f"already processed ({applied.replay_of}): a replay")
    return list(applied.outcomes)


async def webhook(request: Request) -> Response:
    """``POST /webhooks/<provider>``."""
    provider = request.path_params["provider"]
    parse = PROVIDERS.get(provider)
    if parse is None:
        return PlainTextResponse(
            f"Unknown provider; use one of: {', '.join(PROVIDERS)}.\n", status_code=404
        )
    config: Config = request.app.state.config
    body = await request.body()
    try:
        parsed = parse(request, body, request.app.state.webhook_keys, time.time())
        outcomes = await run_in_threadpool(
            apply, request.app.state.store, provider, parsed, config.web.soft_bounce_limit
        )
    except Rejected as exc:
        log.warning(
            "webhook %s from %s refused (%d): %s",
            provider,
            request.client.host if request.client else "?",
            exc.status,
            exc.reason,
        )
        return PlainTextResponse(f"Refused: {exc.reason}.\n", status_code=exc.status)
    for event, outcome in zip(parsed.events, outcomes, strict=True):
        log.info("webhook %s: %s %s -> %s", provider, event.kind, event.email, outcome)
    return JSONResponse({"events": len(parsed.events), "outcomes": outcomes})


def routes() -> list[BaseRoute]:
    """The webhook route."""
    return [Route("/webhooks/{provider}", webhook, methods=["POST"])]
