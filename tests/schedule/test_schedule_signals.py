"""The daemon as a real process and signals: SIGTERM stops between batches and a restart
resumes with nothing lost or sent twice; SIGHUP with a broken schedules.yaml keeps the
daemon and its old configuration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.schedule import ROOT, Project, log_text, project_on, seed, spawn, stop, wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with project_on(request.param, tmp_path) as project:
        yield project


def test_sigterm_mid_send_then_restart_resumes_nothing_lost_nothing_twice(
    project: Project, tmp_path: Path
) -> None:
    total = 1200
    slot = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
    project.write(cron=f"{slot.minute} {slot.hour} * * *", misfire_grace="1h")
    project.add_subscribers(total)
    seed(project, slot)
    first_log = tmp_path / "first.log"
    daemon = spawn(project, "schedule", log=first_log)
    try:
        wait_for(lambda: project.deliveries().get("sent", 0) > 0, timeout=30, what="sending")
    finally:
        code = stop(daemon, first_log)
    assert code == 0, log_text(first_log)
    counts = project.deliveries()
    assert counts.get("queued", 0) > 0, "the send finished before SIGTERM; nothing to resume"
    assert project.runs() == [("news", slot, "interrupted")]
    assert project.issues() == [(1, "sending")]
    delivered = project.delivered()
    assert len(delivered) == counts["sent"] == len(set(delivered))  # the batch in flight finished
    assert "event=interrupted" in log_text(first_log)

    second_log = tmp_path / "second.log"
    daemon = spawn(project, "schedule", log=second_log)
    try:
        wait_for(lambda: project.runs() == [("news", slot, "done")], timeout=30, what="the resume")
    finally:
        code = stop(daemon, second_log)
    assert code == 0, log_text(second_log)
    assert "event=resuming" in log_text(second_log)
    delivered = project.delivered()
    assert len(delivered) == total
    assert set(delivered) == {f"reader{i}@example.org" for i in range(total)}
    assert project.issues() == [(1, "sent")]
    assert project.deliveries() == {"sent": total}


def test_sighup_with_broken_file_keeps_running_then_picks_up_a_fixed_one(tmp_path: Path) -> None:
    with project_on("sqlite", tmp_path) as project:
        project.write(weekly="monday 07:00", timezone="Europe/London")
        log = tmp_path / "daemon.log"
        daemon = spawn(project, "schedule", "--watch-interval", "0.2", log=log)
        try:
            wait_for(lambda: "event=started" in log_text(log), what="the daemon to start")
            project.config.write_text("newsletters:\n  news: [\n", encoding="utf-8")
            daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "event=reload-failed" in log_text(log), what="the reload error")
            assert daemon.poll() is None
            assert "is not valid YAML" in log_text(log)

            project.write(weekly="friday 18:30", timezone="America/New_York")
            wait_for(lambda: "event=rescheduled" in log_text(log), what="the file change")
            assert daemon.poll() is None
        finally:
            code = stop(daemon, log)
        assert code == 0, log_text(log)
        listing = subprocess.run(
            [sys.executable, "-m", "digest", "-c", str(project.config), "schedules", "--json"],
            cwd=project.root,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            check=True,
        )
        (row,) = json.loads(listing.stdout)
        next_run = datetime.fromisoformat(row["next_run"])
        assert (next_run.weekday(), next_run.hour, next_run.minute) == (4, 18, 30)
        assert next_run.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))
        assert datetime.fromisoformat(row["next_run_utc"]) == next_run
        assert row["last_issue"] is None
