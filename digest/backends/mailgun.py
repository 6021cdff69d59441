"""The ``mailgun`` backend: Mailgun's batch sending, 1,000 recipients a call.

``POST /v3/<domain>/messages`` (a form; basic auth ``api:<key>``) carries the issue's
content once, with ``%recipient.<key>%`` where each per-recipient value goes, one
``to`` field per recipient (with their display name) and ``recipient-variables``,
a JSON object from each plain address to its values. The headers that differ per
recipient are placeholders too (``h:Message-Id: %recipient.h:Message-ID%``,
``h:List-Unsubscribe``, as django-anymail does for per-recipient headers); List-Id,
List-Unsubscribe-Post and Reply-To are ``h:`` fields. Documented limits relied on
(Mailgun's "Batch Sending" and "Sending Messages" guides): at most 1,000 recipients
per batch; recipient variables must be given, or every recipient sees the whole
``to`` list; 25 MB per message; a 400 "parameter is not a valid address" when an
address fails syntax checks.

Mailgun answers ``{"id", "message"}`` with ONE id for the whole batch, recorded for
each recipient (bounces reach the webhook by address). A 400 about an address does
not say which: the batch is halved until the refused address stands alone; any
other 400 fails the batch; 413 halves it; 429/5xx retry it; 401 stops the send.
Content that already holds ``%recipient.`` (an article quoting Mailgun syntax, or
such a subscriber name) would be substituted by Mailgun: those messages go one by
one as the exact MIME we built (``messages.mime``). There is no idempotency key: a
crash after Mailgun accepted a batch and before the ledger commit sends the whole batch again (see ``digest.backends.merge``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from ..errors import PermanentError, RequestRefused
from ..models import Content, Message
from ..personalize import mailbox
from .base import SendingConfig, credential
from .merge import MergeBackend

MARK = "%recipient."


def placeholder(key: str) -> str:
    """Where Mailgun puts a recipient's value of ``key``."""
    return f"{MARK}{key}%"


def variables(message: Message) -> dict[str, str]:
    """One recipient's ``recipient-variables``: each value, and each header as ``h:Name``."""
    return {**dict(message.values), **{f"h:{name}": value for name, value in message.headers}}


class MailgunBackendConfig(SendingConfig):
    """Mailgun's messages API for ``domain`` (``base_url`` https://api.eu.mailgun.net in the EU)."""

    type: Literal["mailgun"]
    domain: str
    api_key_env: str = "MAILGUN_API_KEY"
    base_url: str = "https://api.mailgun.net"


class MailgunBackend(MergeBackend):
    max_batch = 1000
    dispatch_batch = 1000
    config_model = MailgunBackendConfig
    config: MailgunBackendConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # id(content) -> (content, why it cannot be batched): the content is kept so
        # that its id is not reused while cached.
        self._checked: dict[int, tuple[Content, str | None]] = {}

    async def open(self) -> None:
        self.key = credential(self.name, self.config.api_key_env, "Mailgun API key")
        await super().open()

    def _content_problem(self, content: Content) -> str | None:
        cached = self._checked.get(id(content))
        if cached is None or cached[0] is not content:
            texts = [content.subject, content.text, content.html, content.sender]
            texts += [value for _, value in content.headers]
            problem = (
                "the issue's content holds '%recipient.'"
                if any(MARK in text for text in texts)
                else None
            )
            cached = self._checked[id(content)] = (content, problem)
        return cached[1]

    def unbatchable(self, message: Message) -> str | None:
        problem = self._content_problem(message.content)
        if problem:
            return problem
        if any(MARK in value for value in variables(message).values()) or MARK in message.name:
            return "a value holds '%recipient.'"
        return None

    def form(self, content: Content, messages: Sequence[Message]) -> dict[str, Any]:
        """The form fields of one batch request for messages that share ``content``
        (``to`` repeated: a list)."""
        fields: dict[str, Any] = {
            "from": content.sender,
            "subject": content.subject,
            "text": content.text_with(placeholder),
        }
        if content.html:
            fields["html"] = content.html_with(placeholder)
        if content.reply_to:
            fields["h:Reply-To"] = content.reply_to
        fields.update((f"h:{name}", value) for name, value in content.headers)
        to: list[str] = []
        recipients: dict[str, dict[str, str]] = {}
        for message in messages:
            assert message.content is content
            fields.update((f"h:{name}", placeholder(f"h:{name}")) for name, _ in message.headers)
            # Mailgun parses each ``to``: the name is written so that it cannot add an
            # address (``mailbox``).
            to.append(mailbox(message.name, message.recipient))
            recipients[message.recipient] = variables(message)
        fields["to"] = to
        fields["recipient-variables"] = json.dumps(recipients, ensure_ascii=False)
        return fields

    async def _post(self, path: str, count: int, **kwargs: Any) -> str:
        response, answer = await self.exchange(
            "POST",
            f"{self.config.base_url}/v3/{self.config.domain}/{path}",
            auth=("api", self.key),
            accept=(400,),
            raw=(413,),
            **kwargs,
        )
        if response.status_code == 413:
            raise RequestRefused(
                f"mailgun: HTTP 413, the request is too large ({count} recipients)."
            )
        message = str(answer.get("message", "")) if isinstance(answer, dict) else str(answer)
        if response.status_code == 400:
            reason = f"mailgun: HTTP 400: {message[:200]}"
            if "not a valid address" in message:
                raise RequestRefused(reason)
            raise PermanentError(reason)
        if not isinstance(answer, dict) or "id" not in answer:
            raise PermanentError(f"mailgun: unexpected answer {str(answer)[:200]}")
        return str(answer["id"])

    async def send_template(self, content: Content, messages: Sequence[Message]) -> str:
        return await self._post("messages", len(messages), data=self.form(content, messages))

    async def deliver(self, message: Message) -> str:
        return await self._post(
            "messages.mime",
            1,
            data={"to": message.recipient},
            files={"message": ("message.eml", message.data, "message/rfc822")},
        )
