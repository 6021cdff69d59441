"""SendGrid's Signed Event Webhook: a JSON array of events, ECDSA-signed.

The signature (P-256, SHA-256 over timestamp + body) is verified with the public
key in ``web.sendgrid_public_key`` (base64 DER as SendGrid shows it, or PEM); the
signed timestamp must be within ``web.webhook_max_age_seconds``; the signature and
each event id are accepted once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request

from ..config import Config
from ..errors import ConfigError, WebhookRejected
from .base import Event, Parsed, WebhookKeys, check_fresh, event_address, json_body

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


@dataclass(frozen=True, slots=True)
class Keys:
    """The verification key; ``None`` when not configured."""

    public_key: ec.EllipticCurvePublicKey | None


def _public_key(text: str) -> ec.EllipticCurvePublicKey:
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


def load_keys(config: Config, environ: Mapping[str, str]) -> Keys:
    """The key named in ``web.sendgrid_public_key``."""
    text = config.web.sendgrid_public_key
    return Keys(public_key=_public_key(text) if text else None)


def parse(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """A SendGrid Signed Event Webhook batch (a JSON array of events)."""
    key = keys.of("sendgrid", Keys).public_key
    if key is None:
        raise WebhookRejected(
            403, "SendGrid webhooks are not configured (set web.sendgrid_public_key)"
        )
    signature = request.headers.get(SIGNATURE_HEADER)
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejected(401, "the request is not signed (no signature or timestamp header)")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejected(401, "the ECDSA signature does not match") from None
    try:
        check_fresh(int(timestamp), now, keys.max_age)
    except ValueError:
        raise WebhookRejected(400, "the timestamp header is not a number") from None
    events = json_body(body)
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise WebhookRejected(400, "a SendGrid webhook body is a JSON array of event objects")
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
        parsed.events.append(Event(event_address(event.get("email")), kind, detail))
    return parsed
