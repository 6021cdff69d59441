"""The ``postmark`` backend: Postmark's batch endpoint, up to 500 messages per call.

``POST /email/batch`` with ``X-Postmark-Server-Token``; the answer is one result per
message, ``ErrorCode`` 0 for accepted. Per-message codes: 406 (the recipient is
inactive: bounced or complained at Postmark) suppresses the address, 300 and other
validation codes fail the message, 429/5xx retry the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ..errors import PermanentError, SendAborted
from ..models import Delivery, DeliveryStatus, Message
from ..personalize import mailbox
from .base import HttpBackend, SendingConfig, credential, failed, sent

#: Postmark error codes that mean the recipient cannot receive mail.
INACTIVE = frozenset({406})
#: Whole-request codes that mean no message can be sent with this setup.
FATAL = frozenset({10, 400, 401, 405, 412, 413})


class PostmarkBackendConfig(SendingConfig):
    """Postmark's batch API; ``api_key_env`` names the variable holding the server token."""

    type: Literal["postmark"]
    api_key_env: str = "POSTMARK_SERVER_TOKEN"
    message_stream: str = "broadcast"
    base_url: str = "https://api.postmarkapp.com"


class PostmarkBackend(HttpBackend):
    max_batch = 500
    dispatch_batch = 500
    config_model = PostmarkBackendConfig
    config: PostmarkBackendConfig

    async def open(self) -> None:
        self.token = credential(self.name, self.config.api_key_env, "Postmark server token")
        await super().open()

    def _payload(self, message: Message) -> dict[str, Any]:
        content = message.content
        body: dict[str, Any] = {
            "From": content.sender,
            # Postmark reads a comma-separated list here: the name is written so that
            # it cannot add an address (``mailbox``).
            "To": mailbox(message.name, message.recipient),
            "Subject": content.subject,
            "TextBody": message.text,
            "Headers": [{"Name": name, "Value": value} for name, value in message.all_headers],
            "MessageStream": self.config.message_stream,
        }
        if content.html:
            body["HtmlBody"] = message.html
        if content.reply_to:
            body["ReplyTo"] = content.reply_to
        return body

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        answer = await self.request(
            "POST",
            f"{self.config.base_url}/email/batch",
            json=[self._payload(m) for m in messages],
            headers={"X-Postmark-Server-Token": self.token, "Accept": "application/json"},
            accept=(422,),
        )
        if isinstance(answer, dict):  # a 422 for the whole request
            code = answer.get("ErrorCode")
            reason = f"postmark: error {code}: {answer.get('Message', '')}"
            if code in FATAL:
                raise SendAborted(f"{reason}. Check backends.{self.name}; nothing more was sent.")
            raise PermanentError(reason)
        if not isinstance(answer, list) or len(answer) != len(messages):
            raise PermanentError(
                f"postmark: expected {len(messages)} results, got {str(answer)[:200]}"
            )
        deliveries = []
        for message, result in zip(messages, answer, strict=True):
            code = result.get("ErrorCode", -1)
            if code == 0:
                deliveries.append(sent(message, str(result.get("MessageID", ""))))
                continue
            reason = f"postmark: error {code}: {result.get('Message', '')}"
            deliveries.append(
                failed(message, DeliveryStatus.FAILED, reason, bounced=code in INACTIVE)
            )
        return deliveries
