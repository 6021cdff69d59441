"""The ``sendgrid`` backend: SendGrid's v3 ``POST /v3/mail/send``, 1,000 recipients a call.

One request carries the issue's content once, with a substitution tag where each
per-recipient value goes, and one ``personalization`` per recipient: ``to``, the
``substitutions`` for its tags (greeting, unsubscribe and preferences links, plain
in the text and HTML-escaped in the HTML) and the ``headers`` that differ per
recipient (Message-ID, List-Unsubscribe); List-Id and List-Unsubscribe-Post are
request-level ``headers``. Documented limits relied on (SendGrid v3 mail/send
reference and its errors page): at most 1,000 personalizations and 1,000
recipients per request, each address once; substitutions at most 10,000 bytes per
personalization (a recipient beyond it goes in a request of its own with the
content filled in); ``text/plain`` before ``text/html``, neither empty; the
headers To, From, Subject, Reply-To, CC, BCC, Content-Type,
Content-Transfer-Encoding, Received, DKIM-Signature, X-SG-ID, X-SG-EID cannot be
set; a ``to.name`` with ``,`` or ``;`` is sent quoted (the documented limitation,
worked around as django-anymail does).

SendGrid answers 202 with one ``X-Message-Id`` for the whole request (recorded for
each recipient); 400 with ``errors`` whose ``field`` (``personalizations.3.to.0.email``)
names a refused recipient, who fails alone while the others are sent again; 413
(payload too large) halves the request; 429 (``Retry-After``) and 5xx retry it.
There is no idempotency key: a crash after SendGrid accepted a request and before
the ledger commit sends the whole request again (see ``digest.backends.merge``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import parseaddr, quote
from typing import Any, Literal

from ..errors import PermanentError, RequestRefused
from ..models import Content, Message
from .base import SendingConfig, credential
from .merge import MergeBackend

#: Bytes of substitutions (tags and values) SendGrid takes per personalization.
MAX_SUBSTITUTION_BYTES = 10_000
#: Headers mail/send does not let a request set.
RESERVED = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
_PERSONALIZATION = re.compile(r"personalizations\.(\d+)\b")


def _address(value: str) -> dict[str, str]:
    name, address = parseaddr(value)
    return _named(address, name)


def _named(address: str, name: str) -> dict[str, str]:
    """A mail/send address object: SendGrid sends to ``email`` only; ``name`` is shown."""
    if not name:
        return {"email": address}
    if any(c in name for c in ",;"):
        # mail/send documents that to.name cannot hold "," or ";" (it splits the
        # header there); a quoted string keeps the name whole.
        name = f'"{quote(name)}"'
    return {"email": address, "name": name}


def tags(content: Content) -> dict[str, str]:
    """The substitution tag of each key: the slot's token (unguessable, fixed per issue)
    with ``t`` (text) or ``h`` (HTML) after it, so no tag is part of another."""
    return {
        key: f"{token}{suffix}"
        for name, token in content.slots
        for key, suffix in ((name, "t"), (f"{name}_html", "h"))
    }


def _headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    reserved = [name for name, _ in pairs if name.lower() in RESERVED]
    if reserved:
        raise PermanentError(
            f"sendgrid: SendGrid does not let a message set the header(s) {', '.join(reserved)}; "
            "use the smtp backend for such messages."
        )
    return dict(pairs)


class SendgridBackendConfig(SendingConfig):
    """SendGrid's v3 mail send API."""

    type: Literal["sendgrid"]
    api_key_env: str = "SENDGRID_API_KEY"
    base_url: str = "https://api.sendgrid.com"


class SendgridBackend(MergeBackend):
    max_batch = 1000
    dispatch_batch = 1000
    config_model = SendgridBackendConfig
    config: SendgridBackendConfig

    async def open(self) -> None:
        self.key = credential(self.name, self.config.api_key_env, "SendGrid API key")
        await super().open()

    def substitutions(self, message: Message) -> dict[str, str]:
        """The personalization's ``substitutions``: each tag and this recipient's value."""
        tag = tags(message.content)
        return {tag[key]: value for key, value in message.values if key in tag}

    def unbatchable(self, message: Message) -> str | None:
        substitutions = self.substitutions(message)
        size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
        if size > MAX_SUBSTITUTION_BYTES:
            return (
                f"its substitutions take {size:,} bytes, over SendGrid's {MAX_SUBSTITUTION_BYTES:,}"
            )
        if any(tag in value for tag in substitutions for value in substitutions.values()):
            return "a value contains a substitution tag"
        return None

    def _body(
        self,
        *,
        sender: str,
        subject: str,
        reply_to: str | None,
        text: str,
        html: str,
        headers: Sequence[tuple[str, str]],
        personalizations: list[dict[str, Any]],
    ) -> dict[str, Any]:
        content = [
            {"type": kind, "value": value}
            for kind, value in (("text/plain", text), ("text/html", html))
            if value
        ]
        body: dict[str, Any] = {
            "personalizations": personalizations,
            "from": _address(sender),
            "subject": subject,
            "content": content,
        }
        if headers:
            body["headers"] = _headers(headers)
        if reply_to:
            body["reply_to"] = _address(reply_to)
        return body

    def payload(self, content: Content, messages: Sequence[Message]) -> dict[str, Any]:
        """The mail/send body for messages that share ``content``."""
        tag = tags(content)
        personalizations = []
        for message in messages:
            assert message.content is content
            personalizations.append(
                {
                    "to": [_named(message.recipient, message.name)],
                    "substitutions": self.substitutions(message),
                    "headers": _headers(message.headers),
                }
            )
        return self._body(
            sender=content.sender,
            subject=content.subject,
            reply_to=content.reply_to,
            text=content.text_with(tag.__getitem__),
            html=content.html_with(tag.__getitem__),
            headers=content.headers,
            personalizations=personalizations,
        )

    def single_payload(self, message: Message) -> dict[str, Any]:
        """The mail/send body of one message with its values filled in."""
        content = message.content
        return self._body(
            sender=content.sender,
            subject=content.subject,
            reply_to=content.reply_to,
            text=message.text,
            html=message.html,
            headers=content.headers,
            personalizations=[
                {
                    "to": [_named(message.recipient, message.name)],
                    "headers": _headers(message.headers),
                }
            ],
        )

    async def _post(self, body: dict[str, Any], count: int) -> str:
        response, answer = await self.exchange(
            "POST",
            f"{self.config.base_url}/v3/mail/send",
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            expect_json=False,
            accept=(400,),
            raw=(413,),
        )
        if response.status_code == 413:
            raise RequestRefused(
                f"sendgrid: HTTP 413, the request is too large ({count} recipients)."
            )
        if response.status_code == 400:
            raise self._refusal(answer)
        return response.headers.get("x-message-id", "")

    def _refusal(self, answer: Any) -> PermanentError:
        errors = answer.get("errors") if isinstance(answer, dict) else None
        if not isinstance(errors, list) or not errors:
            return PermanentError(f"sendgrid: HTTP 400: {str(answer)[:200]}")
        rejected: dict[int, str] = {}
        for error in errors:
            error = error if isinstance(error, dict) else {"message": str(error)}
            match = _PERSONALIZATION.match(str(error.get("field") or ""))
            reason = f"sendgrid: {error.get('message', 'refused')} ({error.get('field')})"
            if match is None:
                # Not about one recipient: the request itself is wrong for everyone.
                return PermanentError(reason)
            rejected.setdefault(int(match.group(1)), reason)
        return RequestRefused("; ".join(dict.fromkeys(rejected.values())), rejected)

    async def send_template(self, content: Content, messages: Sequence[Message]) -> str:
        return await self._post(self.payload(content, messages), len(messages))

    async def deliver(self, message: Message) -> str:
        return await self._post(self.single_payload(message), 1)
