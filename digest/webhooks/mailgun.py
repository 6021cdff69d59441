"""Mailgun webhooks: JSON with a ``signature`` block and ``event-data``.

The signature is an HMAC-SHA256 of timestamp + token keyed by
``DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY``; the signed timestamp must be within
``web.webhook_max_age_seconds``; the signing token is accepted once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from ..config import Config
from ..errors import WebhookRejected
from .base import Event, Parsed, WebhookKeys, check_fresh, event_address, json_body

KEY_ENV = "DIGEST_MAILGUN_WEBHOOK_SIGNING_KEY"


@dataclass(frozen=True, slots=True)
class Keys:
    """The signing key; ``None`` when not set."""

    signing_key: bytes | None


def load_keys(config: Config, environ: Mapping[str, str]) -> Keys:
    """The signing key from the environment."""
    key = environ.get(KEY_ENV)
    return Keys(signing_key=key.encode() if key else None)


def parse(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """A Mailgun webhook (JSON with ``signature`` and ``event-data``)."""
    key = keys.of("mailgun", Keys).signing_key
    if key is None:
        raise WebhookRejected(403, f"Mailgun webhooks are not configured (set {KEY_ENV})")
    payload = json_body(body)
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict) or not all(
        isinstance(signature.get(k), str) for k in ("timestamp", "token", "signature")
    ):
        raise WebhookRejected(401, "the request is not signed (no signature block)")
    expected = hmac.new(
        key, (signature["timestamp"] + signature["token"]).encode(), hashlib.sha256
    ).hexdigest()
    # Compared as bytes: compare_digest refuses str with characters beyond ASCII.
    if not hmac.compare_digest(expected.encode(), signature["signature"].encode()):
        raise WebhookRejected(401, "the HMAC signature does not match")
    try:
        check_fresh(int(signature["timestamp"]), now, keys.max_age)
    except ValueError:
        raise WebhookRejected(400, "the signed timestamp is not a number") from None
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise WebhookRejected(400, "no event-data")
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
    parsed.events.append(Event(event_address(data.get("recipient")), kind, detail))
    return parsed
