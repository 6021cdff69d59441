"""The ``ses`` backend: Amazon SES v2 ``SendEmail`` with the raw MIME message.

Requests are signed with botocore's SigV4 signer (never by hand) and sent with
httpx. SES answers ``{"MessageId"}``; ``TooManyRequestsException`` (429) and
``LimitExceededException`` slow the sender, ``MessageRejected`` fails the message,
``AccountSuspendedException``/``SendingPausedException`` and signature or
permission errors stop the send.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Literal

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..errors import PermanentError, Refusal, SendAborted, ThrottledError
from ..models import Message
from .base import HttpBackend, SendingConfig, credential

FATAL = frozenset({"AccountSuspendedException", "SendingPausedException"})
THROTTLE = frozenset({"TooManyRequestsException", "LimitExceededException"})
#: Refusals of the sender or the content, not of the recipient (an unverified sender
#: or domain, a message SES will not carry): ``Refusal``, nobody is suppressed.
REFUSED = frozenset({"MessageRejected", "MailFromDomainNotVerifiedException"})


class SesBackendConfig(SendingConfig):
    """Amazon SES v2 ``SendEmail`` with raw content, signed with SigV4 by botocore."""

    type: Literal["ses"]
    region: str
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"
    session_token_env: str | None = "AWS_SESSION_TOKEN"
    configuration_set: str | None = None
    endpoint_url: str | None = None


class SesBackend(HttpBackend):
    max_batch = 1
    dispatch_batch = 20
    config_model = SesBackendConfig
    config: SesBackendConfig

    async def open(self) -> None:
        token_env = self.config.session_token_env
        self.credentials = Credentials(
            credential(self.name, self.config.access_key_id_env, "AWS access key id"),
            credential(self.name, self.config.secret_access_key_env, "AWS secret access key"),
            os.environ.get(token_env) if token_env else None,
        )
        self.endpoint = (
            self.config.endpoint_url or f"https://email.{self.config.region}.amazonaws.com"
        ).rstrip("/")
        await super().open()

    def signed(self, body: bytes) -> tuple[str, dict[str, str]]:
        """The URL and the SigV4-signed headers of a SendEmail request with ``body``."""
        url = f"{self.endpoint}/v2/email/outbound-emails"
        request = AWSRequest(
            method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(self.credentials, "ses", self.config.region).add_auth(request)
        return url, dict(request.headers.items())

    async def deliver(self, message: Message) -> str:
        payload: dict[str, object] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": base64.b64encode(message.data).decode("ascii")}},
        }
        if self.config.configuration_set:
            payload["ConfigurationSetName"] = self.config.configuration_set
        body = json.dumps(payload).encode()
        url, headers = self.signed(body)
        response, answer = await self.exchange(
            "POST", url, content=body, headers=headers, accept=(400,)
        )
        if not isinstance(answer, dict):
            raise PermanentError(f"ses: unexpected answer {str(answer)[:200]}")
        if response.status_code < 300:
            return str(answer.get("MessageId", ""))
        kind = (
            (
                response.headers.get("x-amzn-errortype")
                or str(answer.get("__type") or answer.get("code") or "")
            )
            .partition(":")[0]
            .rpartition("#")[2]
        )
        reason = f"ses: {kind or 'error'}: {answer.get('message') or answer.get('Message', '')}"
        if kind in FATAL:
            raise SendAborted(
                f"{reason}. Sending is stopped for this account; nothing more was sent."
            )
        if kind in THROTTLE:
            raise ThrottledError(reason)
        if kind in REFUSED:
            raise Refusal(reason)
        raise PermanentError(reason)
