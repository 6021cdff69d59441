"""The ``resend`` backend: Resend's batch endpoint, up to 100 messages per call.

``POST /emails/batch`` with a bearer key and an ``Idempotency-Key`` made from the
batch's Message-IDs: if a crash makes us send the same batch again, Resend answers
with the first result instead of sending twice. The answer lists one id per message;
a 422 rejects the whole batch (validation), 429/5xx retry it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from ..errors import PermanentError
from ..models import Delivery, Message
from ..personalize import mailbox
from .base import HttpBackend, SendingConfig, credential, sent


def idempotency_key(messages: Sequence[Message]) -> str:
    """The same key for the same messages, whatever process sends them."""
    digest = hashlib.sha256("\n".join(m.message_id for m in messages).encode()).hexdigest()
    return f"digest-{digest[:48]}"


class ResendBackendConfig(SendingConfig):
    """Resend's batch API."""

    type: Literal["resend"]
    api_key_env: str = "RESEND_API_KEY"
    base_url: str = "https://api.resend.com"


class ResendBackend(HttpBackend):
    max_batch = 100
    dispatch_batch = 100
    config_model = ResendBackendConfig
    config: ResendBackendConfig

    async def open(self) -> None:
        self.key = credential(self.name, self.config.api_key_env, "Resend API key")
        await super().open()

    def _payload(self, message: Message) -> dict[str, Any]:
        content = message.content
        body: dict[str, Any] = {
            "from": content.sender,
            "to": [mailbox(message.name, message.recipient)],
            "subject": content.subject,
            "text": message.text,
            "headers": dict(message.all_headers),
        }
        if content.html:
            body["html"] = message.html
        if content.reply_to:
            body["reply_to"] = content.reply_to
        return body

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        answer = await self.request(
            "POST",
            f"{self.config.base_url}/emails/batch",
            json=[self._payload(m) for m in messages],
            headers={
                "Authorization": f"Bearer {self.key}",
                "Idempotency-Key": idempotency_key(messages),
            },
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != len(messages):
            raise PermanentError(f"resend: expected {len(messages)} ids, got {str(answer)[:200]}")
        return [sent(m, str(item.get("id", ""))) for m, item in zip(messages, data, strict=True)]
