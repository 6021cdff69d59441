"""A backend for dispatch tests: it keeps what it was given and fails as told."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

from digest.backends.base import Backend
from digest.models import Delivery, Message


class Recorder(Backend):
    """A backend that keeps what it was given and fails as told (per recipient, per attempt)."""

    type = "recorder"
    dispatch_batch = 5

    def __init__(
        self, plan: dict[str, list[Exception]] | None = None, connections: int = 2
    ) -> None:
        super().__init__("rec", None)
        self.plan = plan or {}
        self.delivered: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()
        self._connections = connections
        self.in_flight = 0
        self.pause = 0.001
        self.most_in_flight = 0

    @property
    def connections(self) -> int:
        return self._connections

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        self.in_flight += len(messages)
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.pause)
            return await super().deliver_batch(messages)
        finally:
            self.in_flight -= len(messages)

    async def deliver(self, message: Message) -> str:
        self.attempts[message.recipient] += 1
        errors = self.plan.get(message.recipient)
        if errors:
            raise errors.pop(0)
        self.delivered[message.recipient] += 1
        return f"id-{message.subscriber_id}"
