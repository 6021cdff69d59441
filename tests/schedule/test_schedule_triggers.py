"""When jobs fire: local wall-clock times across the UK clock changes of 2026 (29 March,
25 October), computed with the newsletter's trigger and fixed clocks, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from digest.config import load_config
from digest.triggers import fire_times, is_repeat, make_trigger, next_run, slot_for

LONDON = ZoneInfo("Europe/London")


def newsletter(tmp_path: Path, **settings: object):
    data = {
        "backends": {"box": {"type": "outbox"}},
        "newsletters": {
            "n": {
                "title": "N",
                "sources": [{"feed": "f.xml"}],
                "list": "l",
                "backend": "box",
                "timezone": "Europe/London",
                **settings,
            }
        },
    }
    (tmp_path / "schedules.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(tmp_path / "schedules.yaml").newsletters["n"]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_weekly_monday_0700_london_stays_0700_local_across_spring_change(tmp_path: Path) -> None:
    trigger = make_trigger(newsletter(tmp_path, weekly="monday 07:00"))
    times = fire_times(trigger, utc(2026, 3, 16), utc(2026, 4, 7))
    assert [t.astimezone(LONDON).time() for t in times] == [time(7, 0)] * 4
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 3, 16, 7),  # GMT
        utc(2026, 3, 23, 7),
        utc(2026, 3, 30, 6),  # BST: the same local time is an hour earlier in UTC
        utc(2026, 4, 6, 6),
    ]


def test_weekly_monday_0700_london_stays_0700_local_across_autumn_change(tmp_path: Path) -> None:
    trigger = make_trigger(newsletter(tmp_path, cron="0 7 * * mon"))
    times = fire_times(trigger, utc(2026, 10, 13), utc(2026, 11, 3))
    assert [t.astimezone(LONDON).time() for t in times] == [time(7, 0)] * 3
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 10, 19, 6),  # BST
        utc(2026, 10, 26, 7),  # GMT
        utc(2026, 11, 2, 7),
    ]


def test_job_on_the_day_of_each_change_fires_at_local_seven(tmp_path: Path) -> None:
    trigger = make_trigger(newsletter(tmp_path, weekly="sunday 07:00"))
    spring = fire_times(trigger, utc(2026, 3, 29), utc(2026, 3, 29, 23))
    autumn = fire_times(trigger, utc(2026, 10, 25), utc(2026, 10, 25, 23))
    assert [t.astimezone(UTC) for t in spring] == [utc(2026, 3, 29, 6)]
    assert [t.astimezone(UTC) for t in autumn] == [utc(2026, 10, 25, 7)]


def test_0230_job_fires_once_on_spring_forward_night(tmp_path: Path) -> None:
    # London jumps from 01:00 GMT to 02:00 BST on 29 March 2026: 02:30 comes once, as BST.
    trigger = make_trigger(newsletter(tmp_path, daily="02:30"))
    night = fire_times(trigger, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert [t.astimezone(UTC) for t in night] == [utc(2026, 3, 29, 1, 30)]


@pytest.mark.parametrize(
    ("zone", "daily", "fires_utc"),
    [
        ("Europe/London", "01:30", utc(2026, 3, 29, 1, 30)),  # gap 01:00-02:00 local
        ("Europe/Paris", "02:30", utc(2026, 3, 29, 1, 30)),  # gap 02:00-03:00 local
    ],
)
def test_time_inside_the_spring_gap_fires_once_just_after_it(
    tmp_path: Path, zone: str, daily: str, fires_utc: datetime
) -> None:
    trigger = make_trigger(newsletter(tmp_path, daily=daily, timezone=zone))
    night = fire_times(trigger, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert [t.astimezone(UTC) for t in night] == [fires_utc]
    # The run is one hour after the jump by the wall clock: 02:30 BST, 03:30 CEST.
    assert night[0].astimezone(UTC).astimezone(ZoneInfo(zone)).hour == int(daily[:2]) + 1


def test_0130_job_fires_once_on_the_night_the_clocks_go_back(tmp_path: Path) -> None:
    # 01:30 happens twice in London on 25 October 2026; APScheduler alone would fire both.
    trigger = make_trigger(newsletter(tmp_path, daily="01:30"))
    night = fire_times(trigger, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert [t.astimezone(UTC) for t in night] == [utc(2026, 10, 25, 0, 30)]
    assert trigger.get_next_fire_time(night[0], utc(2026, 10, 25, 0, 31)) is not None
    second = trigger.get_next_fire_time(night[0], utc(2026, 10, 25, 0, 31))
    assert is_repeat(second)


def test_repeat_firing_maps_to_the_already_claimed_first_slot(tmp_path: Path) -> None:
    trigger = make_trigger(newsletter(tmp_path, daily="01:30"))
    # APScheduler's second firing at 01:30 GMT stands for the slot of 01:30 BST.
    slot = slot_for(trigger, utc(2026, 10, 25, 1, 30, 0), timedelta(hours=6))
    assert slot == utc(2026, 10, 25, 0, 30)


def test_slot_is_the_scheduled_time_not_the_moment_the_job_ran(tmp_path: Path) -> None:
    trigger = make_trigger(newsletter(tmp_path, weekly="monday 07:00"))
    late = utc(2026, 3, 30, 9, 17, 3)  # a misfire run, 3h17m late
    assert slot_for(trigger, late, timedelta(hours=6)) == utc(2026, 3, 30, 6)


def test_next_run_is_in_the_newsletters_zone_with_its_offset(tmp_path: Path) -> None:
    summer = newsletter(tmp_path, weekly="monday 07:00")
    when, deferred = next_run(summer, utc(2026, 6, 1, 12))
    assert when is not None and not deferred
    assert when.isoformat() == "2026-06-08T07:00:00+01:00"
    assert when.astimezone(UTC).isoformat() == "2026-06-08T06:00:00+00:00"


def test_next_run_outside_the_send_window_waits_for_it(tmp_path: Path) -> None:
    saturday = newsletter(tmp_path, weekly="saturday 07:00", send_window="weekdays 06:00-20:00")
    when, deferred = next_run(saturday, utc(2026, 11, 23, 12))
    assert deferred
    assert when is not None and when.isoformat() == "2026-11-30T06:00:00+00:00"


def test_next_run_in_a_spring_gap_is_shown_as_it_happens_after_the_change(
    tmp_path: Path,
) -> None:
    # New York goes from 02:00 EST to 03:00 EDT on 14 March 2027: 02:30 does not exist
    # that night, the job runs at 03:30 EDT and says so.
    gap = newsletter(tmp_path, daily="02:30", timezone="America/New_York")
    when, _ = next_run(gap, utc(2027, 3, 13, 12))
    assert when is not None and when.isoformat() == "2027-03-14T03:30:00-04:00"
    assert when.astimezone(UTC) == utc(2027, 3, 14, 7, 30)
