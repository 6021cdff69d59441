"""Sending on Celery workers against a real broker (RabbitMQ or Redis, by
DIGEST_TEST_BROKER_URL) and PostgreSQL: several `digest worker` processes send an
issue `digest run` publishes; one killed with SIGKILL mid-send loses nobody and sends
at most its in-flight batch twice; `workers:` on SQLite is refused with a sentence."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from digest.backends.outbox import OutboxBackend
from digest.cli import main
from tests.support.fleet import kill, start_run, start_worker, wait_written, written
from tests.support.schedule import Project, project_on

BROKER = os.environ.get("DIGEST_TEST_BROKER_URL")
needs_broker = pytest.mark.skipif(
    not BROKER,
    reason="DIGEST_TEST_BROKER_URL is not set: the worker tests need a RabbitMQ or Redis broker",
)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Project]:
    """A PostgreSQL project whose schedules.yaml sends through workers on a queue of its own."""
    with project_on("postgres", tmp_path) as project:
        project.write()
        data = yaml.safe_load(project.config.read_text(encoding="utf-8"))
        data["workers"] = {"broker": BROKER, "batch": 100, "queue": f"test-{uuid.uuid4().hex}"}
        project.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        yield project


@needs_broker
def test_workers_send_each_reader_once_though_one_is_killed_mid_send(
    fleet: Project, tmp_path: Path
) -> None:
    readers = 3000
    fleet.add_subscribers(readers)
    workers = [start_worker(fleet, tmp_path / f"worker{n}.log") for n in range(3)]
    try:
        run = start_run(fleet)
        wait_written(fleet, 150)
        kill(workers[0])  # mid-send: most of the list is still queued
        at_kill = written(fleet)
        output = run.communicate(timeout=240)[0].decode()
    finally:
        for process in workers:
            kill(process)
    logs = "".join((tmp_path / f"worker{n}.log").read_text(errors="replace") for n in range(3))
    assert run.returncode == 0, output + logs
    assert at_kill < readers, "the kill came after the send: nothing was tested"
    delivered = Counter(fleet.delivered())
    assert set(delivered) == {f"reader{i}@example.org" for i in range(readers)}  # nobody lost
    twice = sum(n - 1 for n in delivered.values())
    assert twice <= OutboxBackend.dispatch_batch, delivered.most_common(3)
    assert fleet.issues() == [(1, "sent")]
    assert f"{readers}/{readers} settled" in output


@needs_broker
def test_run_detach_returns_at_once_and_status_shows_the_progress(
    fleet: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.add_subscribers(30)
    assert main(["-c", str(fleet.config), "run", "news", "--detach"]) == 0
    assert "digest status news" in capsys.readouterr().out
    assert main(["-c", str(fleet.config), "status", "news"]) == 0
    assert "0/30 settled" in capsys.readouterr().out  # no worker yet
    worker = start_worker(fleet, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 60
        while len(fleet.delivered()) < 30 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        kill(worker)
    assert main(["-c", str(fleet.config), "status", "news"]) == 0
    assert "30/30 settled, 30 sent" in capsys.readouterr().out


def test_workers_on_sqlite_are_refused_with_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with project_on("sqlite", tmp_path) as project:
        project.write()
        data = yaml.safe_load(project.config.read_text(encoding="utf-8"))
        data["workers"] = {"broker": "amqp://guest:guest@127.0.0.1:5672//"}
        project.config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        assert main(["-c", str(project.config), "run", "news"]) == 1
    err = capsys.readouterr().err
    assert "workers:" in err and "SQLite" in err and "Traceback" not in err
