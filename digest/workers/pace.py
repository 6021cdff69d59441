"""The rate limit the workers share: ``limits``' moving window kept in Redis, so a
backend's ``rate:`` holds for the whole fleet, and the halved pace one worker was told
(421, 429...) is read by the others."""

from __future__ import annotations

import logging
import math
import time

import redis
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerSecond
from limits.errors import StorageError as LimitsStorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..redact import mask_url

log = logging.getLogger(__name__)

#: How long a slow-down told to the fleet lasts unless told again: each worker's own
#: pacer climbs back from it as its sends go through.
THROTTLE_SECONDS = 60


#: Seconds between two tries of a shared store that cannot be reached.
OUTAGE_WAIT = 1.0
#: What the Redis client and ``limits`` raise when the store cannot be reached.
_UNREACHABLE = (redis.RedisError, OSError, LimitsStorageError)


class RedisPace:
    """A ``digest.backends.base.SharedPace`` in the Redis at ``url``, for backend ``name``.

    While that Redis cannot be reached (restarted, say) nothing is admitted: the fleet's
    rate is a promise to the provider that one worker pacing alone could break N-fold.
    The sender waits and asks again each second, and says so once per outage."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.limiter = MovingWindowRateLimiter(storage_from_string(url))
        self.client = redis.Redis.from_url(url)
        self.key = f"digest:pace:{name}"
        self.down = False

    def _unreachable(self, error: Exception) -> None:
        if not self.down:
            log.warning(
                "the shared rate limits at %s cannot be reached (%s): waiting for them",
                mask_url(self.url),
                error,
            )
        self.down = True

    def take(self, n: int, per_second: float | None, per_hour: int | None) -> float:
        """Admit ``n`` messages (0.0), or the seconds to wait before asking again."""
        try:
            wait = self._take(n, per_second, per_hour)
        except _UNREACHABLE as exc:
            self._unreachable(exc)
            return OUTAGE_WAIT
        if self.down:
            log.warning("the shared rate limits at %s are back", mask_url(self.url))
            self.down = False
        return wait

    def _take(self, n: int, per_second: float | None, per_hour: int | None) -> float:
        items: list[RateLimitItem] = []
        if per_second:
            # A window long enough for a whole batch at the rate (a batch larger than one
            # second's worth could never pass a one-second window).
            seconds = max(1, math.ceil(n / per_second))
            items.append(RateLimitItemPerSecond(max(n, round(per_second * seconds)), seconds))
        if per_hour:
            items.append(RateLimitItemPerHour(per_hour))
        for item in items:
            if not self.limiter.hit(item, self.key, cost=n):
                stats = self.limiter.get_window_stats(item, self.key)
                return max(0.01, min(stats.reset_time - time.time(), 5.0))
        return 0.0

    def throttled(self, rate: float) -> None:
        try:
            self.client.set(f"{self.key}:rate", rate, ex=THROTTLE_SECONDS)
        except _UNREACHABLE as exc:  # this worker still slows down
            self._unreachable(exc)

    def rate(self) -> float | None:
        try:
            value = self.client.get(f"{self.key}:rate")
        except _UNREACHABLE as exc:  # ``take`` waits for the store
            self._unreachable(exc)
            return None
        return float(value) if value is not None else None
