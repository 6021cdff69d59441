"""The rate limit the workers share: ``limits``' moving window kept in Redis, so a
backend's ``rate:`` holds for the whole fleet, and the halved pace one worker was told
(421, 429...) is read by the others."""

from __future__ import annotations

import math
import time

import redis
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

#: How long a slow-down told to the fleet lasts unless told again: each worker's own
#: pacer climbs back from it as its sends go through.
THROTTLE_SECONDS = 60


class RedisPace:
    """A ``digest.backends.base.SharedPace`` in the Redis at ``url``, for backend ``name``."""

    def __init__(self, url: str, name: str) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(url))
        self.client = redis.Redis.from_url(url)
        self.key = f"digest:pace:{name}"

    def take(self, n: int, per_second: float | None, per_hour: int | None) -> float:
        """Admit ``n`` messages (0.0), or the seconds to wait before asking again."""
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
        self.client.set(f"{self.key}:rate", rate, ex=THROTTLE_SECONDS)

    def rate(self) -> float | None:
        value = self.client.get(f"{self.key}:rate")
        return float(value) if value is not None else None
