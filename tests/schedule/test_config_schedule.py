"""schedules.yaml scheduling settings: cadence, time zone, send window, misfire grace,
named lists, template folders and sections, each checked at load time with a message
naming the file, the key path and what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from digest.config import SendWindow, load_config, parse_duration
from digest.errors import ConfigError
from tests.support import write_config

LONDON = ZoneInfo("Europe/London")


def write(tmp_path: Path, newsletter: dict[str, object], **top: object) -> Path:
    data: dict[str, object] = {
        "backends": {"box": {"type": "outbox"}},
        **top,
        "newsletters": {
            "weekly": {
                "title": "Weekly",
                "sources": [{"feed": "feed.xml"}],
                "list": "readers",
                "backend": "box",
                **newsletter,
            }
        },
    }
    return write_config(tmp_path, yaml.safe_dump(data))


def error(tmp_path: Path, newsletter: dict[str, object], **top: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, newsletter, **top))
    return str(info.value)


def test_defaults_are_monday_seven_utc_six_hours_grace_enabled(tmp_path: Path) -> None:
    newsletter = load_config(write(tmp_path, {})).newsletters["weekly"]
    assert newsletter.crontab == "0 7 * * mon"
    assert newsletter.misfire_grace == timedelta(hours=6)
    assert newsletter.enabled is True
    assert newsletter.window is None


def test_minimal_file_without_lists_section_loads_any_list_name(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"list": "whatever"}))
    assert config.lists is None
    assert config.newsletters["weekly"].list_name == "whatever"


@pytest.mark.parametrize(
    ("settings", "crontab"),
    [
        ({"weekly": "monday 07:00"}, "0 7 * * mon"),
        ({"weekly": "Fri 18:45"}, "45 18 * * fri"),
        ({"daily": "6:05"}, "5 6 * * *"),
        ({"cron": "30 2 * * sun"}, "30 2 * * sun"),
    ],
)
def test_friendly_cadence_becomes_cron(
    tmp_path: Path, settings: dict[str, object], crontab: str
) -> None:
    assert load_config(write(tmp_path, settings)).newsletters["weekly"].crontab == crontab


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"cron": "0 7 * *"}, "newsletters.weekly.cron: '0 7 * *' is not a five-field cron"),
        ({"cron": "0 25 * * mon"}, "newsletters.weekly.cron: '0 25 * * mon' is not a valid cron"),
        (
            {"timezone": "Europe/Londn"},
            "newsletters.weekly.timezone: 'Europe/Londn' is not an IANA",
        ),
        ({"weekly": "moonday 07:00"}, "newsletters.weekly.weekly: 'moonday' is not a day"),
        ({"weekly": "monday 7pm"}, "newsletters.weekly.weekly: '7pm' is not a time of day"),
        ({"weekly": "monday"}, "newsletters.weekly.weekly: 'monday' is not of the form"),
        ({"daily": "24:00"}, "newsletters.weekly.daily: '24:00' is not a time of day"),
        (
            {"cron": "0 7 * * mon", "weekly": "monday 07:00"},
            "newsletters.weekly: give only one of cron, weekly",
        ),
        (
            {"send_window": "weekdays 20:00"},
            "newsletters.weekly.send_window: '20:00' is not a range",
        ),
        ({"send_window": "someday 06:00-20:00"}, "newsletters.weekly.send_window: 'someday'"),
        ({"send_window": "daily 06:00-06:00"}, "is an empty window"),
        ({"misfire_grace": "soon"}, "newsletters.weekly.misfire_grace: 'soon' is not a duration"),
        ({"misfire_grace": 0}, "newsletters.weekly.misfire_grace: must be a positive duration"),
        ({"sections": ["World", "world"]}, "newsletters.weekly.sections: 'world' is listed twice"),
        (
            {"sections": ["World", " "]},
            "newsletters.weekly.sections: a section name cannot be empty",
        ),
        ({"enabled": "maybe"}, "newsletters.weekly.enabled:"),
        (
            {"backend": "smtp"},
            "newsletters.weekly.backend: 'smtp' is not a backend defined under 'backends' (box)",
        ),
    ],
)
def test_bad_scheduling_settings_name_file_key_and_problem(
    tmp_path: Path, settings: dict[str, object], expected: str
) -> None:
    message = error(tmp_path, settings)
    assert message.startswith(str(tmp_path / "schedules.yaml") + ": ")
    assert expected in message


def test_unknown_list_is_an_error_when_lists_are_named(tmp_path: Path) -> None:
    message = error(tmp_path, {"list": "nobody"}, lists={"readers": {}, "vip": {"title": "VIPs"}})
    assert (
        "newsletters.weekly.list: 'nobody' is not a list defined under 'lists' (readers, vip)"
        in (message)
    )


def test_named_list_is_accepted(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {}, lists={"readers": {"title": "Readers"}}))
    assert config.lists is not None and config.lists["readers"].title == "Readers"


def test_every_broken_reference_is_reported_at_once(tmp_path: Path) -> None:
    message = error(tmp_path, {"list": "nobody", "backend": "smtp"}, lists={"readers": {}})
    lines = message.splitlines()
    assert len(lines) == 2
    assert all(
        line.startswith(f"{tmp_path / 'schedules.yaml'}: newsletters.weekly.") for line in lines
    )


def test_missing_template_folder_is_found_at_load_time(tmp_path: Path) -> None:
    message = error(tmp_path, {"template_dir": "mytemplates"})
    assert message == (
        f"{tmp_path / 'schedules.yaml'}: newsletters.weekly.template_dir: "
        f"{tmp_path / 'mytemplates'} is not a folder"
    )


def test_template_folder_without_issue_template_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "mytemplates").mkdir()
    assert "has no issue.mjml template" in error(tmp_path, {"template_dir": "mytemplates"})
    (tmp_path / "mytemplates" / "issue.mjml").write_text("<mjml></mjml>", encoding="utf-8")
    newsletter = load_config(write(tmp_path, {"template_dir": "mytemplates"})).newsletters["weekly"]
    assert newsletter.template_dir == str(tmp_path / "mytemplates")


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("6h", timedelta(hours=6)),
        ("90m", timedelta(minutes=90)),
        ("1d 2h", timedelta(hours=26)),
        (3600, timedelta(hours=1)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_durations(text: str | int, delta: timedelta) -> None:
    assert parse_duration(text) == delta


def test_weekdays_window_contains_only_weekday_hours() -> None:
    window = SendWindow.parse("weekdays 06:00-20:00")
    assert window.contains(datetime(2026, 11, 23, 6, 0, tzinfo=LONDON))  # Monday
    assert not window.contains(datetime(2026, 11, 23, 20, 0, tzinfo=LONDON))  # end exclusive
    assert not window.contains(datetime(2026, 11, 22, 12, 0, tzinfo=LONDON))  # Sunday


def test_window_day_ranges_wrap_round_the_week() -> None:
    window = SendWindow.parse("fri-mon 09:00-17:00")
    assert window.days == frozenset({4, 5, 6, 0})


def test_window_across_midnight_belongs_to_the_day_it_opens() -> None:
    window = SendWindow.parse("fri 22:00-02:00")
    assert window.contains(datetime(2026, 11, 27, 23, 0, tzinfo=LONDON))  # Friday night
    assert window.contains(datetime(2026, 11, 28, 1, 0, tzinfo=LONDON))  # early Saturday
    assert not window.contains(datetime(2026, 11, 29, 1, 0, tzinfo=LONDON))  # early Sunday


def test_saturday_slot_in_weekday_window_waits_for_monday_morning() -> None:
    window = SendWindow.parse("weekdays 06:00-20:00")
    saturday = datetime(2026, 11, 28, 7, 0, tzinfo=LONDON)
    assert window.next_opening(saturday) == datetime(2026, 11, 30, 6, 0, tzinfo=LONDON)


def test_window_opening_after_the_clocks_change_is_local_time() -> None:
    window = SendWindow.parse("mon 06:00-20:00")
    # Saturday before the spring change (29 March 2026): the opening is 06:00 BST, 05:00 UTC.
    opening = window.next_opening(datetime(2026, 3, 28, 12, 0, tzinfo=LONDON))
    assert opening.astimezone(UTC) == datetime(2026, 3, 30, 5, 0, tzinfo=UTC)
    assert opening.time() == time(6, 0)
