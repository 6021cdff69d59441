"""The rate limit workers share through Redis (``limits``): three processes pacing one
backend together send at its configured rate within 10%, and a slow-down one of them
is told reaches the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from digest.workers.pace import RedisPace

REDIS = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
pytestmark = pytest.mark.skipif(
    not os.environ.get("DIGEST_TEST_BROKER_URL"),
    reason="DIGEST_TEST_BROKER_URL is not set: the worker tests need the brokers (and Redis)",
)

SENDER = """
import asyncio, json, sys, time
from digest.backends.base import SendPacer
from digest.workers.pace import RedisPace

async def main():
    pacer = SendPacer(float(sys.argv[3]))
    pacer.share(RedisPace(sys.argv[1], sys.argv[2]))
    start = float(sys.argv[5])
    time.sleep(max(0.0, start - time.time()))
    stamps = []
    for _ in range(int(sys.argv[4])):
        await pacer.acquire(1)
        stamps.append(time.time())
    print(json.dumps(stamps))

asyncio.run(main())
"""


def test_three_processes_share_the_rate_within_ten_percent() -> None:
    name, rate, each = f"test-{uuid.uuid4().hex}", 30.0, 100
    start = time.time() + 2.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SENDER, REDIS, name, str(rate), str(each), str(start)],
            stdout=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    stamps = sorted(t for p in processes for t in json.loads(p.communicate(timeout=60)[0]))
    # The first second's worth goes at once (a full window); the pace is what follows.
    steady = [t for t in stamps if t >= stamps[0] + 1.0]
    observed = (len(steady) - 1) / (steady[-1] - steady[0])
    assert abs(observed - rate) <= 0.1 * rate, observed


def test_a_slow_down_told_to_one_reaches_the_others() -> None:
    name = f"test-{uuid.uuid4().hex}"
    one, other = RedisPace(REDIS, name), RedisPace(REDIS, name)
    assert other.rate() is None
    one.throttled(7.5)
    assert other.rate() == 7.5
