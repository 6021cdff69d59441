"""The base of every backend: it owns the sending algorithm, backends fill in hooks.

``Backend.send(messages)`` hands a batch to ``deliver_batch`` and turns what the
hook raises into per-message ``Delivery`` values, so one bad recipient never stops
the batch and nothing is reported sent that was not. A backend overrides
``deliver`` (one message at a time) or ``deliver_batch`` (a provider's batch API),
and ``open``/``close`` when it holds connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import BackendError, PermanentError, TransientError
from ..models import Delivery, DeliveryStatus, Message


class Backend:
    """A way to send messages. Subclasses set ``type`` (the ``type:`` in schedules.yaml)."""

    type: ClassVar[str] = ""
    #: The most messages ``deliver_batch`` takes at once.
    max_batch: ClassVar[int] = 100

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config

    async def __aenter__(self) -> Backend:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Hook: connect, log in, check credentials. ``PermanentError`` stops the send."""

    async def close(self) -> None:
        """Hook: release connections."""

    async def deliver(self, message: Message) -> str:
        """Hook: send one message and return the provider's id for it (may be "").

        Raise ``TransientError`` to have it retried, ``PermanentError`` never to.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement deliver or deliver_batch")

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        """Hook: send a batch; by default ``deliver`` one message after the other."""
        return [await self._one(message) for message in messages]

    async def _one(self, message: Message) -> Delivery:
        try:
            provider_id = await self.deliver(message)
        except TransientError as exc:
            return _failed(message, DeliveryStatus.TRANSIENT, exc)
        except (PermanentError, BackendError) as exc:
            return _failed(message, DeliveryStatus.FAILED, exc)
        return Delivery(
            subscriber_id=message.subscriber_id,
            recipient=message.recipient,
            status=DeliveryStatus.SENT,
            provider_id=provider_id,
        )

    async def send(self, messages: Sequence[Message]) -> list[Delivery]:
        """Send ``messages`` in batches of ``max_batch``; one ``Delivery`` per message, in order."""
        deliveries: list[Delivery] = []
        for start in range(0, len(messages), self.max_batch):
            deliveries.extend(await self.deliver_batch(messages[start : start + self.max_batch]))
        return deliveries


def _failed(message: Message, status: DeliveryStatus, exc: Exception) -> Delivery:
    return Delivery(
        subscriber_id=message.subscriber_id,
        recipient=message.recipient,
        status=status,
        error=str(exc),
    )
