"""Amazon SES bounce and complaint notifications, delivered by Amazon SNS.

The SNS message signature (versions 1 and 2) is verified with the certificate named
in ``web.sns_certificate`` (a path or the PEM itself: fetching it at run time would
trust the network); the topic must be one of ``web.sns_topic_arns`` when they are
set; the signed timestamp must be within ``web.webhook_max_age_seconds``; each SNS
message id is accepted once. Subscription confirmations are logged for the
operator to open, never followed.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request

from ..config import Config
from ..errors import ConfigError, WebhookRejected
from .base import (
    Event,
    Parsed,
    WebhookKeys,
    check_fresh,
    event_address,
    json_body,
    object_field,
)

log = logging.getLogger("digest.web.webhooks")

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


@dataclass(frozen=True, slots=True)
class Keys:
    """The SNS signing key (``None`` when not configured) and the accepted topics."""

    public_key: rsa.RSAPublicKey | None
    topics: tuple[str, ...]


def _public_key(config: Config, where: str) -> rsa.RSAPublicKey:
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


def load_keys(config: Config, environ: Mapping[str, str]) -> Keys:
    """The key of the certificate named in ``web.sns_certificate``, and the topics."""
    web = config.web
    return Keys(
        public_key=_public_key(config, web.sns_certificate) if web.sns_certificate else None,
        topics=tuple(web.sns_topic_arns),
    )


def sns_string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The canonical string SNS signs: ``key\\nvalue\\n`` for its fields, in order
    (``Subject`` only when present). ``WebhookRejected`` for an unknown type or a
    missing field."""
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise WebhookRejected(400, f"unknown SNS message type {message.get('Type')!r}")
    parts = []
    for name in fields:
        if name not in message:
            if name == "Subject":
                continue
            raise WebhookRejected(400, f"the SNS message has no {name}")
        parts.append(f"{name}\n{message[name]}\n")
    return "".join(parts).encode()


def parse(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """An SNS message carrying an SES bounce or complaint notification."""
    mine = keys.of("ses", Keys)
    if mine.public_key is None:
        raise WebhookRejected(403, "SES webhooks are not configured (set web.sns_certificate)")
    message = json_body(body)
    if not isinstance(message, dict):
        raise WebhookRejected(400, "an SNS message is a JSON object")
    if not message.get("Signature") or not isinstance(message["Signature"], str):
        raise WebhookRejected(401, "the SNS message is not signed")
    version = str(message.get("SignatureVersion"))
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
    if algorithm is None:
        raise WebhookRejected(400, f"unknown SNS SignatureVersion {version!r}")
    canonical = sns_string_to_sign(message)
    try:
        mine.public_key.verify(
            base64.b64decode(message["Signature"], validate=True),
            canonical,
            padding.PKCS1v15(),
            algorithm,
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejected(401, "the SNS signature does not match") from None
    if mine.topics and message.get("TopicArn") not in mine.topics:
        raise WebhookRejected(
            403, f"the topic {message.get('TopicArn')} is not in web.sns_topic_arns"
        )
    try:
        sent_at = datetime.fromisoformat(str(message["Timestamp"]))
    except ValueError:
        raise WebhookRejected(400, "the SNS Timestamp is not an ISO 8601 time") from None
    if sent_at.tzinfo is None:  # SNS writes UTC with a Z; never read it as local time
        sent_at = sent_at.replace(tzinfo=UTC)
    check_fresh(sent_at.timestamp(), now, keys.max_age)
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
    notification = json_body(str(message["Message"]).encode())
    if not isinstance(notification, dict):
        raise WebhookRejected(400, "the SNS Message is not an SES notification object")
    kind_name = notification.get("notificationType") or notification.get("eventType")
    if kind_name == "Bounce":
        bounce = object_field(notification, "bounce")
        kind = "hard" if bounce.get("bounceType") == "Permanent" else "soft"
        recipients = bounce.get("bouncedRecipients") or []
        detail = f"ses bounce {bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
    elif kind_name == "Complaint":
        complaint = object_field(notification, "complaint")
        kind = "complaint"
        recipients = complaint.get("complainedRecipients") or []
        detail = f"ses complaint {complaint.get('complaintFeedbackType', '')}".strip()
    else:
        return parsed
    if not isinstance(recipients, list) or not recipients:
        raise WebhookRejected(400, "the SES notification names no recipient")
    for recipient in recipients:
        address = recipient.get("emailAddress") if isinstance(recipient, dict) else None
        parsed.events.append(Event(event_address(address), kind, detail))
    return parsed
