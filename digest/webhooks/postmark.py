"""Postmark bounce and spam-complaint webhooks (one record per request).

Postmark signs nothing: a request is authenticated by HTTP basic auth
(``DIGEST_POSTMARK_WEBHOOK_USER`` / ``..._PASSWORD``) or by a shared secret in the
``X-Digest-Webhook-Token`` header (``DIGEST_POSTMARK_WEBHOOK_TOKEN``); the record id
is accepted once.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from ..config import Config
from ..errors import WebhookRejected
from .base import Event, Parsed, WebhookKeys, event_address, json_body

USER_ENV = "DIGEST_POSTMARK_WEBHOOK_USER"
PASSWORD_ENV = "DIGEST_POSTMARK_WEBHOOK_PASSWORD"
TOKEN_ENV = "DIGEST_POSTMARK_WEBHOOK_TOKEN"
TOKEN_HEADER = "x-digest-webhook-token"

_KINDS = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "ManuallyDeactivated": "hard",
    "SpamComplaint": "complaint",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
}


@dataclass(frozen=True, slots=True)
class Keys:
    """Basic-auth credentials, or the shared token; ``None`` when not set."""

    user: str | None
    password: str | None
    token: str | None


def load_keys(config: Config, environ: Mapping[str, str]) -> Keys:
    """The credentials from the environment."""
    return Keys(
        user=environ.get(USER_ENV) or None,
        password=environ.get(PASSWORD_ENV) or None,
        token=environ.get(TOKEN_ENV) or None,
    )


def parse(request: Request, body: bytes, keys: WebhookKeys, now: float) -> Parsed:
    """A Postmark bounce or spam-complaint webhook (one record per request)."""
    mine = keys.of("postmark", Keys)
    if mine.user and mine.password:
        expected = base64.b64encode(f"{mine.user}:{mine.password}".encode())
        given = request.headers.get("authorization", "").removeprefix("Basic ").strip().encode()
        if not hmac.compare_digest(given, expected):
            raise WebhookRejected(401, "wrong or missing basic-auth credentials")
    elif mine.token:
        given = request.headers.get(TOKEN_HEADER, "").encode()
        if not hmac.compare_digest(given, mine.token.encode()):
            raise WebhookRejected(401, f"wrong or missing {TOKEN_HEADER} header")
    else:
        raise WebhookRejected(
            403, f"Postmark webhooks are not configured (set {TOKEN_ENV} or basic auth)"
        )
    record = json_body(body)
    if not isinstance(record, dict) or "RecordType" not in record:
        raise WebhookRejected(400, "not a Postmark webhook record (no RecordType)")
    kind_name = record.get("Type") if record["RecordType"] == "Bounce" else record["RecordType"]
    record_id = record.get("ID")
    if not isinstance(record_id, int | str) or isinstance(record_id, bool) or record_id == "":
        raise WebhookRejected(400, "the Postmark record has no ID (a number)")
    parsed = Parsed(once=[f"{record['RecordType']}:{record_id}"])
    kind = _KINDS.get(str(kind_name))
    if kind is not None:
        detail = f"postmark {kind_name}: {str(record.get('Description', ''))[:200]}"
        parsed.events.append(Event(event_address(record.get("Email")), kind, detail))
    return parsed
