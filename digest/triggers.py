"""When a newsletter fires: its cron trigger in its own time zone, the fire times in a
range, and the slot a firing stands for.

APScheduler 3 fires a cron job at both occurrences of a wall-clock time on the night
the clocks go back; a newsletter set for 01:30 means once, so the repeat is skipped
(``next_fire``) or mapped to the first occurrence's slot (``slot_for``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from .config import NewsletterConfig


def make_trigger(newsletter: NewsletterConfig) -> CronTrigger:
    """The cron trigger of ``newsletter`` in its own time zone."""
    return CronTrigger.from_crontab(newsletter.crontab, timezone=ZoneInfo(newsletter.timezone))


def same_trigger(a: Any, b: CronTrigger) -> bool:
    """Whether two triggers fire at the same times (same fields and time zone)."""
    return str(a) == str(b) and str(getattr(a, "timezone", "")) == str(b.timezone)


def is_repeat(moment: datetime) -> bool:
    """Whether ``moment`` (aware, local) is the second occurrence of a wall-clock time on a
    night the clocks go back. APScheduler 3 fires a cron job at both; a newsletter set for
    01:30 means once, so the repeat stands for the first occurrence's slot."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def next_fire(trigger: CronTrigger, previous: datetime | None, now: datetime) -> datetime | None:
    """The trigger's next fire time at or after ``now``, repeats of a wall-clock time
    skipped, with the offset in force at that instant."""
    moment = trigger.get_next_fire_time(previous, now)
    while moment is not None and is_repeat(moment):
        # Step in UTC: wall-clock arithmetic on a fold=1 time would go back an hour.
        moment = trigger.get_next_fire_time(moment, moment.astimezone(UTC) + timedelta(seconds=1))
    if moment is None:
        return None
    # A time in a spring-forward gap (02:30 on the night New York goes from 02:00 to
    # 03:00) comes with the offset before the change; the instant it fires is right,
    # its wall-clock reading is not. Through UTC it reads as it happens: 03:30-04:00.
    return moment.astimezone(UTC).astimezone(moment.tzinfo)


def fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every wall-clock fire time of ``trigger`` in ``[start, end]`` (aware), in order."""
    times = []
    moment = next_fire(trigger, None, start)
    while moment is not None and moment <= end:
        times.append(moment)
        moment = next_fire(trigger, moment, moment.astimezone(UTC) + timedelta(microseconds=1))
    return times


def slot_for(trigger: CronTrigger, now: datetime, grace: timedelta) -> datetime:
    """The slot a firing at ``now`` stands for, in UTC: the latest wall-clock fire time
    at most ``grace`` ago (what APScheduler ran, coalesced); ``now`` to the second if none.

    The repeat of a wall-clock time when the clocks go back maps to the first occurrence,
    whose slot is already claimed, so a 01:30 job goes out once on that night too.
    """
    lookback = max(grace, timedelta(hours=2)) + timedelta(seconds=1)
    times = fire_times(trigger, now - lookback, now)
    slot = times[-1] if times else now.replace(microsecond=0)
    return slot.astimezone(UTC)


def next_run(newsletter: NewsletterConfig, now: datetime) -> tuple[datetime | None, bool]:
    """When ``newsletter`` will next go out after ``now``, in its time zone, and whether
    that is later than its cron time because the send window is closed then."""
    fire = next_fire(make_trigger(newsletter), None, now)
    window = newsletter.window
    if fire is None or window is None or window.contains(fire):
        return fire, False
    return window.next_opening(fire), True
