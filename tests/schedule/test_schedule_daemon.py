"""The scheduler in this process against a real SQLite file (and PostgreSQL when
DIGEST_TEST_DATABASE_URL is set): misfires within and beyond grace, restarts with the
persistent job store, reloads good and bad, the send window."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import load_config
from digest.pipeline import Pipeline
from digest.schedule import FIRE, Daemon, deferred_id, job_id
from digest.store.tables import ScheduleRunRow
from tests.support.schedule import Project, project_on, seed, wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    with project_on(request.param, tmp_path) as project:
        yield project


def minute(delta: timedelta) -> datetime:
    """Now + ``delta``, to the minute, in UTC."""
    return (datetime.now(UTC) + delta).replace(second=0, microsecond=0)


def daily_at(slot: datetime) -> str:
    return f"{slot.minute} {slot.hour} * * *"


def stored_next_run(project: Project) -> datetime:
    daemon = Daemon(project.config)
    daemon.scheduler.start(paused=True)
    try:
        return daemon.jobs()["news"].next_run_time
    finally:
        daemon.scheduler.shutdown(wait=False)
        daemon.store.close()


@pytest.fixture
def running() -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for daemon in daemons:
        if daemon.scheduler.running:
            daemon.shutdown()


def test_run_missed_while_down_goes_out_on_start_within_grace(
    project: Project, running: list[Daemon]
) -> None:
    slot = minute(-timedelta(minutes=2))
    project.write(cron=daily_at(slot), misfire_grace="1h")
    project.add_subscribers(3)
    seed(project, slot)
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.start()
    wait_for(lambda: ("news", slot, "done") in project.runs(), what="the missed slot to be sent")
    daemon.shutdown()
    assert sorted(project.delivered()) == [f"reader{i}@example.org" for i in range(3)]
    assert project.issues() == [(1, "sent")]
    assert stored_next_run(project) == slot + timedelta(days=1)


def test_run_missed_beyond_grace_is_skipped_and_recorded(
    project: Project, running: list[Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="digest")
    slot = minute(-timedelta(minutes=5))
    project.write(cron=daily_at(slot), misfire_grace="1m")
    project.add_subscribers(3)
    seed(project, slot)
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.start()
    wait_for(
        lambda: ("news", slot, "missed") in project.runs(), what="the slot to be recorded missed"
    )
    daemon.shutdown()
    assert project.delivered() == []
    assert project.issues() == []
    assert stored_next_run(project) == slot + timedelta(days=1)
    missed = [r.getMessage() for r in caplog.records if "event=missed" in r.getMessage()]
    assert len(missed) == 1
    assert "newsletter=news" in missed[0] and "grace=1m00s" in missed[0]


def test_restart_keeps_the_stored_next_run_and_reschedules_a_changed_cadence(
    project: Project, running: list[Daemon]
) -> None:
    project.write(weekly="monday 07:00")
    first = Daemon(project.config)
    first.start()
    later = minute(timedelta(days=3))
    first.scheduler.modify_job(job_id("news"), jobstore="default", next_run_time=later)
    first.shutdown()

    # The job, pickled with a textual reference to digest.schedule:fire, is restored as is.
    second = Daemon(project.config)
    running.append(second)
    second.start()
    job = second.jobs()["news"]
    assert job.func_ref == "digest.schedule:fire"
    assert job.next_run_time == later
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 6 * 3600)
    second.shutdown()

    project.write(daily="05:15", timezone="Europe/London", misfire_grace="2h")
    third = Daemon(project.config)
    running.append(third)
    third.start()
    job = third.jobs()["news"]
    local = job.next_run_time.astimezone(job.trigger.timezone)
    assert (local.hour, local.minute) == (5, 15)
    assert job.misfire_grace_time == 2 * 3600
    third.shutdown()


def test_invalid_schedules_yaml_on_reload_keeps_the_old_configuration(
    project: Project, running: list[Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    project.write(weekly="monday 07:00")
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.start()
    before = daemon.config
    next_run = daemon.jobs()["news"].next_run_time

    project.config.write_text("newsletters: [unclosed\n", encoding="utf-8")
    assert daemon.reload("SIGHUP") is False
    project.write(weekly="monday 07:00", timezone="Mars/Olympus")
    assert daemon.reload("schedules.yaml changed") is False
    project.config.unlink()
    assert daemon.reload("schedules.yaml changed") is False

    assert daemon.config is before
    assert daemon.jobs()["news"].next_run_time == next_run
    failures = [r.getMessage() for r in caplog.records if "event=reload-failed" in r.getMessage()]
    assert len(failures) == 3
    assert "is not valid YAML" in failures[0]
    assert "newsletters.news.timezone: 'Mars/Olympus' is not an IANA time zone" in failures[1]
    assert "no such file" in failures[2]
    assert all('kept="previous configuration"' in line for line in failures)


def test_good_reload_reschedules_and_disabling_removes_the_job(
    project: Project, running: list[Daemon]
) -> None:
    project.write(weekly="monday 07:00")
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.start()
    project.write(weekly="friday 18:30", timezone="America/New_York")
    assert daemon.reload("SIGHUP") is True
    job = daemon.jobs()["news"]
    local = job.next_run_time.astimezone(job.trigger.timezone)
    assert (local.weekday(), local.hour, local.minute) == (4, 18, 30)
    assert str(job.trigger.timezone) == "America/New_York"
    project.write(weekly="friday 18:30", enabled=False)
    assert daemon.reload("SIGHUP") is True
    assert daemon.jobs() == {}


def test_slot_outside_send_window_waits_for_it_to_open(
    project: Project, running: list[Daemon]
) -> None:
    slot = minute(-timedelta(minutes=1))
    opens, closes = minute(timedelta(hours=2)), minute(timedelta(hours=3))
    project.write(
        cron=daily_at(slot), send_window=f"daily {opens:%H:%M}-{closes:%H:%M}", misfire_grace="1h"
    )
    project.add_subscribers(2)
    seed(project, slot)
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.start()
    deferred = wait_for(
        lambda: daemon.scheduler.get_job(deferred_id("news", slot), jobstore="default"),
        what="a deferred job",
    )
    daemon.shutdown()
    assert deferred.next_run_time == opens
    assert deferred.args == ("news", slot.isoformat())
    assert project.runs() == [] and project.delivered() == []


def test_deferred_slot_runs_under_its_own_slot_once_the_window_is_open(
    project: Project, running: list[Daemon]
) -> None:
    slot = minute(-timedelta(hours=3))
    opened, closes = minute(-timedelta(minutes=5)), minute(timedelta(hours=1))
    project.write(send_window=f"daily {opened:%H:%M}-{closes:%H:%M}", misfire_grace="1h")
    project.add_subscribers(2)
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.fire("news", slot)  # what the deferred job does when the window opens
    daemon.fire("news", slot)  # and a second daemon doing the same finds the slot taken
    assert project.runs() == [("news", slot, "done")]
    assert sorted(project.delivered()) == ["reader0@example.org", "reader1@example.org"]


def test_deferred_run_missed_beyond_grace_is_recorded_for_the_original_slot(
    project: Project, running: list[Daemon]
) -> None:
    slot = minute(-timedelta(days=2))
    opening = minute(-timedelta(minutes=10))
    project.write(misfire_grace="1m")
    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.scheduler.start(paused=True)
    daemon.scheduler.add_job(
        FIRE,
        trigger="date",
        run_date=opening,
        args=["news", slot.isoformat()],
        id=deferred_id("news", slot),
        jobstore="default",
        misfire_grace_time=60,
    )
    daemon.scheduler.resume()
    wait_for(lambda: project.runs() == [("news", slot, "missed")], what="the missed record")
    daemon.shutdown()
    assert project.issues() == []


def test_resume_and_overdue_slot_of_one_newsletter_never_send_a_row_twice(
    project: Project, running: list[Daemon]
) -> None:
    total = 600
    interrupted = minute(-timedelta(days=1))
    due = minute(-timedelta(minutes=2))
    project.write(cron=daily_at(due), misfire_grace="1h")
    project.add_subscribers(total)
    # Issue #1 stopped by SIGTERM after its first batch, as the daemon leaves it.
    calls = iter(range(1000))
    store = project.store()
    config = load_config(project.config)
    report = asyncio.run(Pipeline(config, store).run("news", stop=lambda: next(calls) >= 1))
    assert report.send is not None and report.send.interrupted
    with store.session() as session:
        session.add(
            ScheduleRunRow(newsletter="news", slot=interrupted, status="interrupted", owner="x:1")
        )
    store.close()
    seed(project, due)

    daemon = Daemon(project.config)
    running.append(daemon)
    daemon.start()  # the resume and the overdue slot both start at once
    # Whichever runs first sends the rest of issue #1; the other finds nothing new.
    wait_for(
        lambda: sorted(status for _, _, status in project.runs()) == ["done", "nothing"],
        what="both runs",
    )
    daemon.shutdown()
    delivered = project.delivered()
    assert sorted(delivered) == sorted(f"reader{i}@example.org" for i in range(total))
    assert project.issues() == [(1, "sent")]


def _orphan(project: Project, slot: datetime, owner: str, heartbeat: datetime) -> None:
    store = project.store()
    with store.session() as session:
        session.add(
            ScheduleRunRow(
                newsletter="news",
                slot=slot,
                status="running",
                owner=owner,
                started_at=heartbeat,
                heartbeat_at=heartbeat,
            )
        )
    store.close()


def test_a_slot_whose_owner_on_another_host_went_silent_is_taken_over(
    project: Project, running: list[Daemon]
) -> None:
    # Far from any cron time, so only the takeovers can send anything.
    project.write(cron=daily_at(minute(timedelta(hours=12))))
    project.add_subscribers(3)
    now = datetime.now(UTC)
    silent, alive = minute(-timedelta(hours=3)), minute(-timedelta(hours=2))
    daemon = Daemon(project.config, stale_after=timedelta(minutes=10), orphan_check_every=0.2)
    running.append(daemon)
    daemon.start()
    # Rows appear after the start: the periodic look finds them, not only the first one.
    _orphan(project, alive, "other-host.example:77", now - timedelta(minutes=1))
    _orphan(project, silent, "other-host.example:78", now - timedelta(minutes=11))
    wait_for(
        lambda: ("news", silent, "done") in project.runs(), what="the silent slot to be resumed"
    )
    daemon.shutdown()
    assert ("news", alive, "running") in project.runs()  # its owner still beats: left alone
    assert sorted(project.delivered()) == [f"reader{i}@example.org" for i in range(3)]


def test_a_running_slot_keeps_its_heartbeat_fresh(project: Project, running: list[Daemon]) -> None:
    slot = minute(-timedelta(minutes=2))
    project.write(cron=daily_at(slot), misfire_grace="1h")
    project.add_subscribers(600)
    seed(project, slot)
    daemon = Daemon(project.config, heartbeat_every=0.02)
    running.append(daemon)
    daemon.start()
    wait_for(lambda: ("news", slot, "done") in project.runs(), what="the slot to be sent")
    daemon.shutdown()
    store = project.store()
    with store.session() as session:
        row = session.query(ScheduleRunRow).one()
        started, beat = row.started_at, row.heartbeat_at
    store.close()
    assert beat is not None and beat - started >= timedelta(seconds=0.02)
