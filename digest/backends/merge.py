"""Provider batch APIs that fill in each recipient's values themselves.

SendGrid (``substitutions``) and Mailgun (``recipient-variables``) take one content
with placeholders and up to a thousand recipients, each with their values, per
request. ``MergeBackend`` owns the algorithm; a provider fills in three hooks:

- ``send_template(content, messages)``: one request for messages that share a
  ``Content``; returns the provider's id (one for the whole request);
- ``unbatchable(message)``: why this recipient cannot go in a batch (a value
  beyond the provider's limits), or ``None``;
- ``deliver(message)``: one message on its own, for what cannot be batched:
  nothing is dropped.

``deliver_batch`` first fails, alone, each address a provider would refuse
(``check_address``), then sends one request per shared content. A request is all or
nothing at these providers, so a rejection is narrowed down before anything is
recorded: ``RequestRefused`` names the refused recipients (the others are sent
again without them) or says only that some address was refused (the request is
split in halves until each refusal stands alone). A 400 means nothing was sent, so
sending the rest again cannot send anything twice. Throttling, server errors and
other refusals settle the whole request (``Backend._failure``), never recipients
an earlier request of the same batch already delivered.

Neither provider offers an idempotency key on these endpoints, so a crash between
the provider accepting a request and the ledger commit can send that whole request
again: the in-flight window is ``connections`` x ``dispatch_batch`` (docs/sending.md).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..errors import PermanentError, RequestRefused, SendAborted, TransientError
from ..models import Content, Delivery, DeliveryStatus, Message
from .base import HttpBackend, failed, sent

log = logging.getLogger(__name__)


def check_address(address: str) -> str | None:
    """Why providers would refuse ``address`` (RFC 5321 syntax, a dotted domain), or None.

    ``check_recipient`` already keeps out what cannot go in a header; this catches
    what passes it but makes an API refuse the whole request (no domain dot, spaces,
    empty labels, over-long parts).
    """
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return "the address has no local part or no domain"
    if any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in address):
        return "the address contains a space or a control character"
    if len(address) > 254 or len(local) > 64:
        return "the address is longer than RFC 5321 allows"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the local part of the address has a misplaced dot"
    labels = domain.split(".")
    if len(labels) < 2:
        return "the domain of the address has no dot"
    for label in labels:
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return "the domain of the address has an empty or malformed label"
        if not all(c.isalnum() or c == "-" for c in label):
            return "the domain of the address has a character a domain cannot have"
    return None


class MergeBackend(HttpBackend):
    """An HTTP provider that sends a batch from one ``Content`` and per-recipient values."""

    async def send_template(self, content: Content, messages: Sequence[Message]) -> str:
        """Hook: one request for ``messages`` (all with ``message.content`` ==
        ``content``, distinct addresses); the provider's id. Raise
        ``RequestRefused`` when the provider refused some recipients."""
        raise NotImplementedError

    def unbatchable(self, message: Message) -> str | None:
        """Hook: why this recipient must go on their own (a provider limit), or None."""
        return None

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        results: list[Delivery | None] = [None] * len(messages)
        groups: dict[int, list[int]] = {}
        alone: list[int] = []
        for position, message in enumerate(messages):
            problem = check_address(message.recipient)
            if problem:
                results[position] = failed(
                    message, DeliveryStatus.FAILED, f"{self.type}: {problem}; not sent."
                )
                continue
            reason = self.unbatchable(message)
            if reason:
                log.info("%s: %s goes on its own: %s", self.type, message.recipient, reason)
                alone.append(position)
                continue
            groups.setdefault(id(message.content), []).append(position)
        try:
            for positions in groups.values():
                for request in _distinct(positions, messages):
                    await self._send_request(messages, request, results)
            for position in alone:
                results[position] = await self._attempt(messages[position])
        except SendAborted as exc:
            exc.partial = [d for d in results if d is not None]
            raise
        return [d for d in results if d is not None]

    async def _send_request(
        self, messages: Sequence[Message], positions: list[int], results: list[Delivery | None]
    ) -> None:
        batch = [messages[p] for p in positions]
        try:
            provider_id = await self.send_template(batch[0].content, batch)
        except RequestRefused as exc:
            await self._narrow(messages, positions, results, exc)
            return
        except (TransientError, PermanentError) as exc:
            for position in positions:
                results[position] = self._failure(messages[position], exc)
            return
        for position in positions:
            results[position] = sent(messages[position], provider_id)

    async def _narrow(
        self,
        messages: Sequence[Message],
        positions: list[int],
        results: list[Delivery | None],
        exc: RequestRefused,
    ) -> None:
        """Fail the refused recipients alone and send the others again."""
        named = {i: reason for i, reason in exc.rejected.items() if 0 <= i < len(positions)}
        if named:
            for index, reason in named.items():
                position = positions[index]
                results[position] = failed(messages[position], DeliveryStatus.FAILED, reason)
            rest = [p for i, p in enumerate(positions) if i not in named]
            if rest:
                await self._send_request(messages, rest, results)
        elif len(positions) == 1:
            results[positions[0]] = failed(messages[positions[0]], DeliveryStatus.FAILED, str(exc))
        else:
            middle = len(positions) // 2
            await self._send_request(messages, positions[:middle], results)
            await self._send_request(messages, positions[middle:], results)


def _distinct(positions: list[int], messages: Sequence[Message]) -> list[list[int]]:
    """``positions`` cut into requests in which no address appears twice (providers
    refuse a request that names an address twice); in order, usually one request."""
    requests: list[list[int]] = []
    seen: list[set[str]] = []
    for position in positions:
        address = messages[position].recipient.lower()
        for request, addresses in zip(requests, seen, strict=True):
            if address not in addresses:
                request.append(position)
                addresses.add(address)
                break
        else:
            requests.append([position])
            seen.append({address})
    return requests
