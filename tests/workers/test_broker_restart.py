"""A broker restarted mid-send while two workers send: a Redis of the test's own (both
the broker and the store of the shared rate limits) killed with SIGKILL and started
again, and, where DIGEST_TEST_BROKER_RESTART=1 allows it, this machine's RabbitMQ stopped
and started with rabbitmqctl. With its append-only file (or RabbitMQ's durable queue)
the tasks survive and the workers carry on once they reconnect; without, the tasks are
gone, and the waiting `digest run` publishes them again once nothing moves
(`workers.republish_after`). Either way every reader gets the issue once, but for the
batches in flight, and nobody is lost."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import yaml

from digest.backends.outbox import OutboxBackend
from tests.support.fleet import (
    RABBITMQCTL,
    REDIS_SERVER,
    PrivateRedis,
    SystemRabbit,
    kill,
    start_run,
    start_worker,
    wait_written,
    written,
)
from tests.support.schedule import project_on

BROKER = os.environ.get("DIGEST_TEST_BROKER_URL", "")
RESTART_RABBIT = os.environ.get("DIGEST_TEST_BROKER_RESTART") == "1"


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            "redis-append-only",
            marks=pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
        ),
        pytest.param(
            "redis-no-persistence",
            marks=pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed"),
        ),
        pytest.param(
            "rabbitmq",
            marks=pytest.mark.skipif(
                not (RESTART_RABBIT and RABBITMQCTL and BROKER.startswith("amqp://")),
                reason="restarts this machine's RabbitMQ: set DIGEST_TEST_BROKER_RESTART=1 "
                "with an amqp:// DIGEST_TEST_BROKER_URL and rabbitmqctl at hand (.ci/run does)",
            ),
        ),
    ],
)
def test_a_broker_restarted_mid_send_loses_nobody(tmp_path: Path, kind: str) -> None:
    broker: PrivateRedis | SystemRabbit
    if kind == "rabbitmq":
        broker = SystemRabbit(BROKER)
    else:
        broker = PrivateRedis(tmp_path / "redis", persist=kind == "redis-append-only")
        broker.start()
    persist = kind != "redis-no-persistence"
    readers = 2000
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with project_on("postgres", tmp_path) as fleet:
            fleet.write()
            data = yaml.safe_load(fleet.config.read_text(encoding="utf-8"))
            data["workers"] = {
                "broker": broker.url,
                "batch": 100,
                "queue": f"test-{uuid.uuid4().hex}",
                "republish_after": 3,
            }
            fleet.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
            fleet.add_subscribers(readers)
            workers = [start_worker(fleet, tmp_path / f"worker{n}.log") for n in range(2)]
            run = start_run(fleet)
            wait_written(fleet, 300)
            broker.kill()
            at_kill = written(fleet)
            time.sleep(2)  # the workers see the broker gone
            broker.start()
            try:
                output = run.communicate(timeout=240)[0].decode()
            finally:
                kill(run)
            delivered = Counter(fleet.delivered())
            issues = fleet.issues()
    finally:
        for process in workers:
            kill(process)
        if isinstance(broker, PrivateRedis):
            broker.kill()
        else:  # this machine's broker is left running, whatever happened
            broker.start()
    logs = "".join((tmp_path / f"worker{n}.log").read_text(errors="replace") for n in range(2))
    assert run.returncode == 0, output + logs
    assert at_kill < readers, "the broker was killed after the send: nothing was tested"
    assert set(delivered) == {f"reader{i}@example.org" for i in range(readers)}  # nobody lost
    # Two workers, each with one batch in flight when the broker went.
    twice = sum(n - 1 for n in delivered.values())
    assert twice <= 2 * OutboxBackend.dispatch_batch, delivered.most_common(3)
    assert issues == [(1, "sent")]
    assert f"{readers}/{readers} settled" in output
    if not persist:  # the restarted broker had lost the tasks: run published them again
        assert "published" in output and "again" in output, output
