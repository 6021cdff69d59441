"""Structured log lines of the scheduler: ``event=NAME key=value ...``, one line each,
for people reading journald and for log processors alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def kv(event: str, **fields: Any) -> str:
    """A structured log line: ``event=NAME key=value ...`` (values with spaces quoted)."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        if isinstance(value, float):
            text = f"{value:.2f}"
        elif isinstance(value, datetime):
            text = value.isoformat()
        else:
            text = " | ".join(str(value).splitlines())  # one event, one line
        parts.append(f'{key}="{text}"' if (" " in text or not text) else f"{key}={text}")
    return " ".join(parts)


def duration(delta: timedelta | None) -> str:
    """``delta`` as ``1h05m`` or ``4m07s`` (``unknown`` for None)."""
    if delta is None:
        return "unknown"
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
