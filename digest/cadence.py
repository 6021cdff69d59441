"""When, as written in schedules.yaml: weekdays, clock times, durations (``6h``,
``1d 2h``) and send windows (``mon-fri 07:00-09:00``). Pure parsing, no configuration
model: ``digest.config`` validates its fields with these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_GROUPS = {
    "daily": frozenset(range(7)),
    "everyday": frozenset(range(7)),
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")


def parse_day(word: str) -> int:
    """0 (Monday) .. 6 (Sunday) for ``monday`` or ``mon`` (any case); ``ValueError`` otherwise."""
    key = word.strip().lower()
    names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if key in names:
        return names.index(key)
    if key in DAYS:
        return DAYS.index(key)
    raise ValueError(f"'{word}' is not a day of the week such as 'monday'")


def parse_clock(text: str) -> time:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"'{text}' is not a time of day such as '07:00'")
    return time(int(match[1]), int(match[2]))


def parse_duration(value: str | int | float) -> timedelta:
    """``6h``, ``90m``, ``1d 2h``, ``3600`` (seconds) as a ``timedelta``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '6h' or '30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value.strip().lower())
        if not value.strip() or not match or not any(match.groups()):
            raise ValueError(f"'{value}' is not a duration such as '6h', '30m' or '1d 2h'")
        d, h, m, s = (int(g or 0) for g in match.groups())
        seconds = ((d * 24 + h) * 60 + m) * 60 + s
    if seconds <= 0:
        raise ValueError("must be a positive duration such as '6h'")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Local days and hours in which a newsletter may be sent (``end`` exclusive).

    ``start > end`` is a window that crosses midnight (``22:00-02:00``); the day is the
    day the window opens.
    """

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        """``weekdays 06:00-20:00``, ``mon-fri 06:00-20:00``, ``sat,sun 09:00-12:00``,
        ``daily 06:00-20:00`` or ``06:00-20:00`` (every day)."""
        parts = text.split()
        if len(parts) == 1:
            days_text, hours = "daily", parts[0]
        elif len(parts) == 2:
            days_text, hours = parts
        else:
            raise ValueError(
                f"'{text}' is not a send window such as 'weekdays 06:00-20:00' or 'mon-sat 07:00-21:00'"
            )
        days_text = days_text.lower()
        if days_text in _DAY_GROUPS:
            days = _DAY_GROUPS[days_text]
        else:
            picked: set[int] = set()
            for chunk in days_text.split(","):
                first, sep, last = chunk.partition("-")
                a = parse_day(first)
                b = parse_day(last) if sep else a
                picked.update((a + i) % 7 for i in range((b - a) % 7 + 1))
            days = frozenset(picked)
        start_text, sep, end_text = hours.partition("-")
        if not sep:
            raise ValueError(f"'{hours}' is not a range of hours such as '06:00-20:00'")
        start, end = parse_clock(start_text), parse_clock(end_text)
        if start == end:
            raise ValueError(f"'{hours}' is an empty window: start and end are the same")
        return cls(days, start, end)

    def contains(self, local: datetime) -> bool:
        """Whether the local wall-clock time ``local`` is inside the window."""
        clock = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return local.weekday() in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return local.weekday() in self.days
        return (local.weekday() - 1) % 7 in self.days and clock < self.end

    def next_opening(self, after: datetime) -> datetime:
        """The first moment at or after ``after`` (aware) that is inside the window."""
        if self.contains(after):
            return after
        zone = after.tzinfo
        for offset in range(8):
            day = after.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            # Built from wall-clock parts so a DST change between now and then is honoured.
            opening = datetime.combine(day, self.start, tzinfo=zone)
            if opening >= after:
                return opening
        raise AssertionError("a send window opens at least once a week")
