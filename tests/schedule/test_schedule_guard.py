"""The slot guard with real processes on one database (SQLite file; PostgreSQL when
DIGEST_TEST_DATABASE_URL is set): two of them never send a slot twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.schedule import ROOT, Project, log_text, project_on, seed, spawn, stop, wait_for

FIRE_SCRIPT = """
import logging, sys, time
from datetime import datetime
from digest.schedule import Daemon

logging.basicConfig(level=logging.INFO, format="%(message)s")
daemon = Daemon(sys.argv[1])
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # both processes fire together
daemon.fire("news", datetime.fromisoformat(sys.argv[3]))
daemon.store.close()
"""


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with project_on(request.param, tmp_path) as project:
        yield project


def test_two_processes_firing_one_slot_send_one_issue(project: Project, tmp_path: Path) -> None:
    project.write(misfire_grace="1h")
    project.add_subscribers(50)
    project.store().close()  # migrated once, before the race
    slot = datetime.now(UTC).replace(microsecond=0)
    start_at = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                FIRE_SCRIPT,
                str(project.config),
                str(start_at),
                slot.isoformat(),
            ],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum("event=done" in out for out in outputs) == 1, outputs
    assert sum('reason="slot already claimed"' in out for out in outputs) == 1, outputs
    assert project.issues() == [(1, "sent")]
    assert project.runs() == [("news", slot, "done")]
    delivered = project.delivered()
    assert len(delivered) == 50 and len(set(delivered)) == 50


def test_two_daemons_on_one_database_send_a_due_slot_once(project: Project, tmp_path: Path) -> None:
    # Due a few seconds from now so both daemons, once started, wake for it together; one
    # that starts late finds it already done. Either way it must go out once.
    due = datetime.now(UTC) + timedelta(seconds=6)
    project.write(cron=f"{due.minute} {due.hour} * * *", misfire_grace="1h")
    project.add_subscribers(20)
    seed(project, due)  # both daemons wake for the same stored run time
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    daemons = [spawn(project, "schedule", log=log) for log in logs]
    try:
        wait_for(
            lambda: all("event=started" in log_text(log) for log in logs),
            timeout=30,
            what="both daemons to start",
        )
        wait_for(lambda: any(r[2] == "done" for r in project.runs()), timeout=30, what="a send")
        time.sleep(1.0)  # give the other daemon the chance to (wrongly) send it again
        assert all(d.poll() is None for d in daemons)
    finally:
        codes = [stop(d, log) for d, log in zip(daemons, logs, strict=True)]
    texts = [log_text(log) for log in logs]
    assert codes == [0, 0], texts
    assert sum(text.count("event=done") for text in texts) == 1, texts
    assert project.issues() == [(1, "sent")]
    delivered = project.delivered()
    assert len(delivered) == 20 and len(set(delivered)) == 20
