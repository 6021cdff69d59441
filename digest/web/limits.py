"""Request limits: a cap on body size (ASGI middleware) and sliding-window rate limits.

Rate-limit state lives in the process: ``digest serve`` is one process, and a
restart forgetting recent attempts costs at most one extra window of them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitMiddleware:
    """Answers 413 to any request whose body is larger than ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before reading; a body
    without one (chunked) is read up to the limit and refused once it passes it.
    The body is then handed to the app from memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _plain(send, 400, b"Bad Content-Length header.\n")
                return
            if too_big:
                await _plain(send, 413, b"Request body too large.\n")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _plain(send, 413, b"Request body too large.\n")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _plain(send: Send, status: int, text: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(text)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text})


class RateLimiter:
    """At most ``limit`` hits per key within ``window`` seconds (a sliding window).

    An admission check: ``allow`` answers at once and refuses what is over the limit,
    per key (an IP, an address). Sending is paced by the other kind of limit,
    ``digest.backends.base.SendPacer``, which waits instead and adapts to the server.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count a hit for ``key``; ``False`` (and not counted) when over the limit."""
        now = self.clock()
        if len(self._hits) > 10_000:
            self._forget_idle(now)
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return False
        hits.append(now)
        return True

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again."""
        hits = self._hits.get(key)
        if not hits:
            return 0
        return max(1, int(hits[0] + self.window - self.clock()) + 1)

    def _forget_idle(self, now: float) -> None:
        # Bounded memory under a flood of distinct keys: drop the ones with no recent hit.
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
