"""Resuming after the sender was stopped: `digest run` stops between batches on SIGTERM
and the next run sends the rest; a daemon killed outright (SIGKILL) is resumed by the
next daemon started on the same host. Nothing is lost; only the batch in flight at a
SIGKILL may go twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.schedule import log_text, project_on, seed, spawn, stop, wait_for


def test_sigterm_stops_one_shot_run_between_batches_and_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    total = 1200
    with project_on("sqlite", tmp_path) as project:
        project.write()
        project.add_subscribers(total)
        log = tmp_path / "run.log"
        process = spawn(project, "run", "news", log=log)
        try:
            wait_for(lambda: project.deliveries().get("sent", 0) > 0, timeout=30, what="sending")
        finally:
            code = stop(process, log)
        assert code == 1, log_text(log)
        assert "stopped by SIGTERM; 'digest run news' sends the rest of this issue." in log_text(
            log
        )
        counts = project.deliveries()
        assert counts.get("queued", 0) > 0, "the send finished before SIGTERM; nothing to resume"
        delivered = project.delivered()
        assert len(delivered) == counts["sent"] == len(set(delivered))

        again = tmp_path / "again.log"
        assert spawn(project, "run", "news", log=again).wait(timeout=60) == 0, log_text(again)
        assert "Resumed and sent issue #1" in log_text(again)
        delivered = project.delivered()
        assert sorted(delivered) == sorted(f"reader{i}@example.org" for i in range(total))
        assert project.issues() == [(1, "sent")]


def test_daemon_killed_outright_is_resumed_by_the_next_start_on_the_host(
    tmp_path: Path,
) -> None:
    total = 1200
    with project_on("sqlite", tmp_path) as project:
        slot = (datetime.now(UTC) - timedelta(minutes=1)).replace(second=0, microsecond=0)
        project.write(cron=f"{slot.minute} {slot.hour} * * *", misfire_grace="1h")
        project.add_subscribers(total)
        seed(project, slot)
        first_log = tmp_path / "first.log"
        daemon = spawn(project, "schedule", log=first_log)
        try:
            wait_for(lambda: project.deliveries().get("sent", 0) > 0, timeout=30, what="sending")
        finally:
            daemon.kill()
            daemon.wait(timeout=30)
        assert project.runs() == [("news", slot, "running")]
        assert project.deliveries().get("queued", 0) > 0, "the send finished before the kill"

        second_log = tmp_path / "second.log"
        daemon = spawn(project, "schedule", log=second_log)
        try:
            wait_for(
                lambda: project.runs() == [("news", slot, "done")], timeout=30, what="the resume"
            )
        finally:
            code = stop(daemon, second_log)
        assert code == 0, log_text(second_log)
        delivered = project.delivered()
        assert set(delivered) == {f"reader{i}@example.org" for i in range(total)}
        # Only the batch in flight at the kill can have gone twice.
        assert len(delivered) - total <= 100
        assert project.issues() == [(1, "sent")]
