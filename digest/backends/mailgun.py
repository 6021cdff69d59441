"""The ``mailgun`` backend: Mailgun's ``POST /v3/<domain>/messages.mime``.

Each message goes as the exact MIME we built (form field ``message``) with its
recipient in ``to``, so every header reaches the reader unchanged; basic auth
``api:<key>``. Mailgun answers ``{"id", "message"}``; 400 is a refused message,
401 wrong credentials, 429/5xx retried.
"""

from __future__ import annotations

from ..config import MailgunBackendConfig
from ..errors import PermanentError
from ..models import Message
from .base import HttpBackend, credential


class MailgunBackend(HttpBackend):
    type = "mailgun"
    max_batch = 1
    dispatch_batch = 20
    config: MailgunBackendConfig

    async def open(self) -> None:
        self.key = credential(self.name, self.config.api_key_env, "Mailgun API key")
        await super().open()

    async def deliver(self, message: Message) -> str:
        answer = await self.request(
            "POST",
            f"{self.config.base_url}/v3/{self.config.domain}/messages.mime",
            auth=("api", self.key),
            data={"to": message.recipient},
            files={"message": ("message.eml", message.data, "message/rfc822")},
        )
        if not isinstance(answer, dict) or "id" not in answer:
            raise PermanentError(f"mailgun: unexpected answer {str(answer)[:200]}")
        return str(answer["id"])
