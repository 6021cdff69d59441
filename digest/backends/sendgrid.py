"""The ``sendgrid`` backend: SendGrid's v3 ``POST /v3/mail/send``.

One request carries up to 1,000 ``personalizations`` that share one content. Our
messages differ per recipient (greeting, unsubscribe links), so each request holds
the personalization of one message, with its own headers; requests run
``connections`` at a time. SendGrid answers 202 with the id in ``X-Message-Id``;
400 lists what is wrong in ``errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from ..config import SendgridBackendConfig
from ..models import Message
from .base import HttpBackend, credential, parts


def _address(value: str) -> dict[str, str]:
    name, address = parseaddr(value)
    return {"email": address, "name": name} if name else {"email": address}


class SendgridBackend(HttpBackend):
    type = "sendgrid"
    max_batch = 1
    dispatch_batch = 20
    config: SendgridBackendConfig

    async def open(self) -> None:
        self.key = credential(self.name, self.config.api_key_env, "SendGrid API key")
        await super().open()

    def payload(self, messages: Sequence[Message]) -> dict[str, Any]:
        """The mail/send body for messages that share one content (here: one message)."""
        first = parts(messages[0])
        body: dict[str, Any] = {
            "personalizations": [
                {"to": [_address(p.to)], "headers": dict(p.headers)} for p in map(parts, messages)
            ],
            "from": _address(first.sender),
            "subject": first.subject,
            "content": [
                {"type": "text/plain", "value": first.text},
                {"type": "text/html", "value": first.html},
            ],
        }
        if first.reply_to:
            body["reply_to"] = _address(first.reply_to)
        return body

    async def deliver(self, message: Message) -> str:
        response, _ = await self.exchange(
            "POST",
            f"{self.config.base_url}/v3/mail/send",
            json=self.payload([message]),
            headers={"Authorization": f"Bearer {self.key}"},
            expect_json=False,
        )
        return response.headers.get("x-message-id", "")
