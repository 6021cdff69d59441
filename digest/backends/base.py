"""The base of every backend: it owns the sending algorithm, backends fill in hooks.

``Backend.send(messages)`` cuts the messages into batches of ``max_batch``, waits
for the rate limiter, hands each batch to ``deliver_batch`` and turns what the
hooks raise into per-message ``Delivery`` values, so one bad recipient never stops
the batch and nothing is reported sent that was not. A backend overrides
``deliver`` (one message at a time) or ``deliver_batch`` (a provider's batch API),
and ``open``/``close`` when it holds connections.

What a hook raises decides what happens (see ``digest.errors``):

- ``TransientError``: the message is retried later; ``ThrottledError`` also halves
  the pace of the ``SendPacer`` and pauses it for the server's ``Retry-After``;
  ``Unreachable`` is reported ``refused`` (nothing about the recipient);
- ``PermanentError``: never retried; ``HardBounce`` also suppresses the address;
  ``Refusal`` (policy, relay, content) is reported ``refused``: nobody is suppressed;
- ``SendAborted``: the backend cannot send at all; it propagates out of ``send``.

``HttpBackend`` adds what the provider APIs share: an injected ``httpx.AsyncClient``,
credentials read from the environment variable the config names, and the mapping
of HTTP answers (401/403 stop the send, 429 and 5xx are transient, HTML where JSON
was expected is transient and reported as such).
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, Self, get_args

import httpx
from pydantic import Field

from ..errors import (
    BackendError,
    ConfigError,
    HardBounce,
    PermanentError,
    Refusal,
    SendAborted,
    ThrottledError,
    TransientError,
    Unreachable,
)
from ..models import Delivery, DeliveryStatus, Message
from ..schema import StrictModel

#: The slowest pace throttling may push a backend down to, in messages per second.
MIN_RATE = 0.2
#: Recipients refused for reasons not about them before a send stops, unless configured.
DEFAULT_MAX_REFUSALS = 5


class SharedPace(Protocol):
    """A pace shared by every process sending through one backend (``digest.workers``):
    ``take`` admits ``n`` messages against the fleet's rates, or says how many seconds
    to wait first; ``throttled`` tells the fleet the halved rate, ``rate`` reads it."""

    def take(self, n: int, per_second: float | None, per_hour: int | None) -> float: ...

    def throttled(self, rate: float) -> None: ...

    def rate(self) -> float | None: ...


class SendPacer:
    """An adaptive pace for sending: messages per second and per hour, shared by all
    senders of a backend. It waits (never refuses) and slows down or speeds up with
    the server's pushback; ``digest.web.limits.RateLimiter`` is the other kind of
    limit, a per-key admission check that refuses without waiting.

    ``acquire(n)`` waits until ``n`` messages may go. ``throttled(retry_after)`` halves
    the pace (from the configured rate, or from the rate actually observed when none
    is configured) and pauses everyone for ``retry_after`` seconds; signals within one
    second of each other count once, since concurrent senders hit the same wall
    together. ``relax()`` after successful sends raises the pace by a quarter each
    second until it is back at the configured rate (or unlimited again).
    """

    def __init__(
        self,
        per_second: float | None = None,
        per_hour: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.ceiling = per_second
        self.rate = per_second
        self.per_hour = per_hour
        self.clock = clock
        self.sleep = sleep
        self._next = clock()
        self._paused_until = 0.0
        self._last_throttle = -1e9
        self._last_raise = -1e9
        self._recovered_at: float | None = None
        self._started: float | None = None
        # [whole second, messages] for the last hour: bounded at 3,600 entries.
        self._seconds: deque[list[int]] = deque()
        self.throttle_count = 0
        self.shared: SharedPace | None = None

    def share(self, shared: SharedPace) -> None:
        """Pace together with every other process that shares ``shared``: the configured
        rates hold for them all, and a slow-down one of them is told applies to all."""
        self.shared = shared

    async def _take_shared(self, n: int) -> None:
        assert self.shared is not None
        fleet = await asyncio.to_thread(self.shared.rate)
        if fleet is not None and (self.rate is None or fleet < self.rate):
            self.rate = fleet  # another process was told to slow down
        rate = self.rate if self.rate is not None else self.ceiling
        while wait := await asyncio.to_thread(self.shared.take, n, rate, self.per_hour):
            await self.sleep(wait)

    def _sent_since(self, since: float) -> int:
        return sum(n for second, n in self._seconds if second >= since)

    def observed_rate(self, window: float = 5.0) -> float:
        """Messages per second over the last ``window`` seconds (or since the first send)."""
        if self._started is None:
            return 0.0
        now = self.clock()
        span = max(min(window, now - self._started), 0.1)
        return self._sent_since(int(now - span)) / span

    async def acquire(self, n: int = 1) -> None:
        """Wait until ``n`` more messages may be sent, then count them as sent."""
        if self.shared is not None:
            await self._take_shared(n)
        while True:
            now = self.clock()
            wait = self._paused_until - now
            if self.rate is not None:
                wait = max(wait, self._next - now)
            if self.per_hour is not None:
                while self._seconds and self._seconds[0][0] <= now - 3600:
                    self._seconds.popleft()
                if self._seconds and self._sent_since(now - 3600) + n > self.per_hour:
                    wait = max(wait, self._seconds[0][0] + 3600 - now)
            if wait <= 0:
                break
            await self.sleep(wait)
        if self.rate is not None:
            self._next = max(self._next, now) + n / self.rate
        if self._started is None:
            self._started = now
        second = int(now)
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1][1] += n
        else:
            self._seconds.append([second, n])
            if len(self._seconds) > 3600:
                self._seconds.popleft()

    def throttled(self, retry_after: float | None = None) -> None:
        """The server pushed back: slow down, and pause for ``retry_after`` seconds."""
        now = self.clock()
        if retry_after:
            self._paused_until = max(self._paused_until, now + min(retry_after, 3600))
        if now - self._last_throttle < 1.0:
            return
        self._last_throttle = now
        self.throttle_count += 1
        base = self.rate if self.rate is not None else max(self.observed_rate(), 2 * MIN_RATE)
        self.rate = max(MIN_RATE, base / 2)
        if self.shared is not None:
            self.shared.throttled(self.rate)
        # Unlimited backends recover to twice the pace that first drew a complaint.
        if self.ceiling is None and self._recovered_at is None:
            self._recovered_at = base * 2

    def relax(self) -> None:
        """Messages went through without pushback: speed up gradually."""
        now = self.clock()
        if self.rate is None or now - self._last_throttle < 2.0 or now - self._last_raise < 1.0:
            return
        self._last_raise = now
        self.rate = max(self.rate * 1.25, self.rate + 1)
        if self.ceiling is not None and self.rate >= self.ceiling:
            self.rate = self.ceiling
        elif self.ceiling is None and self.rate >= (self._recovered_at or 0):
            self.rate, self._recovered_at = None, None


class BackendConfig(StrictModel):
    """The settings of one ``backends.<name>`` entry. Each backend module defines its
    own, with ``type: Literal["<type>"]`` (the discriminator of the config union)."""

    type: str

    def resolved(self, resolve: Callable[[str], str]) -> Self:
        """These settings with relative paths resolved by ``resolve`` (against the
        folder of schedules.yaml); a backend that names files overrides it."""
        return self


class RateConfig(StrictModel):
    """How fast a backend may send: messages per second and per hour (unset: no limit).

    The sender starts at these rates, halves its pace when the server pushes back
    (SMTP 421/451/452/454, HTTP 429) and climbs back to them when it stops.
    """

    per_second: float | None = Field(None, gt=0)
    per_hour: int | None = Field(None, gt=0)


class SendingConfig(BackendConfig):
    """Settings every network backend shares. Credentials are named by environment variable."""

    rate: RateConfig = Field(default_factory=RateConfig)
    connections: int = Field(4, ge=1, le=200)
    timeout: float = Field(30.0, gt=0)
    #: Recipients refused for reasons not about them (policy, relay, content) before a
    #: send stops (see ``digest.dispatch``).
    max_refusals: int = Field(DEFAULT_MAX_REFUSALS, ge=1)


class Backend:
    """A way to send messages.

    A backend module defines its settings model (a ``BackendConfig``) and a
    ``Backend`` subclass naming it in ``config_model``; ``type`` (the ``type:`` in
    schedules.yaml) is read from the model, and ``digest.backends`` finds the
    module by itself: nothing else lists the backends.
    """

    type: ClassVar[str] = ""
    #: The settings model of this backend; set by each concrete backend.
    config_model: ClassVar[builtins.type[BackendConfig]]
    #: The most messages ``deliver_batch`` takes at once.
    max_batch: ClassVar[int] = 100
    #: How many messages dispatch claims per worker: this times ``connections`` is the
    #: most a crash can send twice.
    dispatch_batch: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "config_model" in vars(cls):
            (cls.type,) = get_args(cls.config_model.model_fields["type"].annotation)

    def __init__(self, name: str, config: Any) -> None:
        self.name = name
        self.config = config
        rate = getattr(config, "rate", None)
        self.limiter = SendPacer(rate.per_second if rate else None, rate.per_hour if rate else None)

    @property
    def connections(self) -> int:
        """How many batches may be in flight at once (``connections`` in the config)."""
        return int(getattr(self.config, "connections", 1))

    @property
    def max_refusals(self) -> int:
        """How many recipients refused for reasons not about them stop a send
        (``max_refusals`` in the config)."""
        return int(getattr(self.config, "max_refusals", DEFAULT_MAX_REFUSALS))

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Hook: connect, log in, check credentials. ``SendAborted`` stops the send."""

    async def close(self) -> None:
        """Hook: release connections."""

    async def deliver(self, message: Message) -> str:
        """Hook: send one message and return the provider's id for it (may be "").

        Raise ``TransientError`` to have it retried, ``PermanentError`` never to.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement deliver or deliver_batch")

    async def deliver_batch(self, messages: Sequence[Message]) -> list[Delivery]:
        """Hook: send a batch, one ``Delivery`` per message in order.

        By default ``deliver`` one message after the other, each through the limiter.
        A batch API raises for the whole batch, or reports per message (and calls
        ``self.limiter.throttled`` itself when only some recipients were throttled).
        """
        results: list[Delivery] = []
        try:
            for message in messages:
                results.append(await self._one(message))
        except SendAborted as exc:
            exc.partial = results
            raise
        return results

    async def _one(self, message: Message) -> Delivery:
        await self.limiter.acquire()
        return await self._attempt(message)

    async def _attempt(self, message: Message) -> Delivery:
        """``deliver`` one message, past the limiter; its ``Delivery`` (what is not about
        this message, such as ``SendAborted``, propagates)."""
        try:
            provider_id = await self.deliver(message)
        except Exception as exc:
            return self._failure(message, exc)
        return sent(message, provider_id)

    def _failure(self, message: Message, exc: Exception) -> Delivery:
        """The ``Delivery`` for an error a hook raised; re-raises what is not per message."""
        if isinstance(exc, ThrottledError):
            self.limiter.throttled(exc.retry_after)
        if isinstance(exc, TransientError):
            return failed(
                message,
                DeliveryStatus.TRANSIENT,
                str(exc),
                refused=isinstance(exc, Unreachable),
            )
        if isinstance(exc, PermanentError):
            return failed(
                message,
                DeliveryStatus.FAILED,
                str(exc),
                bounced=isinstance(exc, HardBounce),
                refused=isinstance(exc, Refusal),
            )
        raise exc

    async def send(self, messages: Sequence[Message]) -> list[Delivery]:
        """Send ``messages`` in batches of ``max_batch``; one ``Delivery`` per message, in order.

        ``SendAborted`` (and any bug) propagates: the caller leaves the rows queued.
        """
        batched = type(self).deliver_batch is not Backend.deliver_batch
        deliveries: list[Delivery] = []
        for start in range(0, len(messages), self.max_batch):
            chunk = messages[start : start + self.max_batch]
            try:
                if batched:
                    await self.limiter.acquire(len(chunk))
                    try:
                        result = await self.deliver_batch(chunk)
                    except (TransientError, PermanentError) as exc:
                        result = [self._failure(message, exc) for message in chunk]
                else:
                    result = await self.deliver_batch(chunk)
            except SendAborted as exc:
                exc.partial = deliveries + list(getattr(exc, "partial", []))
                raise
            if len(result) != len(chunk):
                raise BackendError(
                    f"The {self.type} backend reported {len(result)} outcomes for {len(chunk)} messages."
                )
            if all(d.status is not DeliveryStatus.TRANSIENT for d in result):
                self.limiter.relax()
            deliveries.extend(result)
        return deliveries


def sent(message: Message, provider_id: str) -> Delivery:
    """A ``SENT`` delivery of ``message``."""
    return Delivery(
        subscriber_id=message.subscriber_id,
        recipient=message.recipient,
        status=DeliveryStatus.SENT,
        provider_id=provider_id,
    )


def failed(
    message: Message,
    status: DeliveryStatus,
    error: str,
    *,
    bounced: bool = False,
    refused: bool = False,
) -> Delivery:
    """A ``TRANSIENT`` or ``FAILED`` delivery of ``message`` with the reason."""
    return Delivery(
        subscriber_id=message.subscriber_id,
        recipient=message.recipient,
        status=status,
        error=error,
        bounced=bounced,
        refused=refused,
    )


def credential(backend: str, env_name: str | None, what: str) -> str:
    """The value of the environment variable ``env_name``; ``ConfigError`` when unset."""
    if not env_name:
        raise ConfigError(f"backends.{backend}: no environment variable is named for the {what}.")
    value = os.environ.get(env_name, "")
    if not value:
        raise ConfigError(
            f"backends.{backend}: the {what} is read from ${env_name}, which is not set."
        )
    return value


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` of a response in seconds (delta or HTTP date), if any."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class HttpBackend(Backend):
    """A provider reached over HTTPS with httpx. ``client`` is injected by tests.

    Subclasses build requests in ``deliver_batch`` and send them with ``request``,
    which returns the decoded JSON of a 2xx answer or raises the matching error.
    Statuses a provider uses per batch for per-recipient rejections (e.g. Postmark's
    422) can be passed in ``accept`` to get their JSON back instead.
    """

    def __init__(self, name: str, config: Any, *, client: httpx.AsyncClient | None = None) -> None:
        super().__init__(name, config)
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise BackendError(f"The {self.type} backend was used before it was opened.")
        return self._client

    async def open(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.config.timeout,
                limits=httpx.Limits(max_connections=self.connections),
            )

    async def close(self) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def request(
        self, method: str, url: str, *, accept: Sequence[int] = (), **kwargs: Any
    ) -> Any:
        """Send one request; the decoded JSON of a 2xx (or ``accept``-ed) answer."""
        return (await self.exchange(method, url, accept=accept, **kwargs))[1]

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        accept: Sequence[int] = (),
        expect_json: bool = True,
        raw: Sequence[int] = (),
        **kwargs: Any,
    ) -> tuple[httpx.Response, Any]:
        """Send one request; the response and its decoded JSON (``None`` for a 2xx
        without ``expect_json``, and for the statuses in ``raw``, whatever their body).

        401/403 raise ``SendAborted``; 429 ``ThrottledError`` with ``Retry-After``;
        connection errors ``Unreachable``; 5xx, timeouts and non-JSON answers
        ``TransientError``;
        other 4xx ``PermanentError`` carrying the provider's message.
        """
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise TransientError(
                f"{self.type}: no answer within {self.config.timeout:g}s."
            ) from None
        except httpx.TransportError as exc:
            raise Unreachable(f"{self.type}: cannot reach {url} ({exc}).") from None
        status = response.status_code
        if status in (401, 403):
            raise SendAborted(
                f"The {self.type} API refused the credentials (HTTP {status}: "
                f"{_excerpt(response)}). Check the key in the environment variable named "
                f"by backends.{self.name}."
            )
        if status == 429:
            raise ThrottledError(
                f"{self.type}: too many requests (HTTP 429).", retry_after(response)
            )
        if status >= 500:
            raise TransientError(f"{self.type}: server error HTTP {status}: {_excerpt(response)}.")
        if (not expect_json and 200 <= status < 300) or status in raw:
            return response, None
        try:
            data = response.json()
        except ValueError:
            raise TransientError(
                f"{self.type}: the API answered HTTP {status} with "
                f"{response.headers.get('content-type', 'no content type')} instead of JSON: "
                f"{_excerpt(response)}."
            ) from None
        if 200 <= status < 300 or status in accept:
            return response, data
        raise PermanentError(f"{self.type}: HTTP {status}: {_excerpt(response)}.")


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return (text[:200] + "…") if len(text) > 200 else text or "(empty body)"
