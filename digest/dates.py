"""The one date parser: publication dates from pages, feeds and sitemaps.

``parse_date`` reads ISO 8601 / W3C datetimes (``2024-05-01``, ``2024-05-01T10:00Z``),
RFC 2822 dates (``Wed, 01 May 2024 10:00:00 +0200``) and an ISO date or datetime at the
start of a longer string (``2024-05-01 10:00:00.0 CEST``). A time without an offset is
taken as UTC; an offset that is given is kept. Anything else is ``None``, never an error.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["parse_date"]

_ISO_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?")


def parse_date(value: object) -> datetime | None:
    """``value`` as a timezone-aware datetime, or ``None`` when it is not a date."""
    if not isinstance(value, str) or not (value := value.strip()):
        return None
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            m = _ISO_PREFIX.match(value)
            if m:
                try:
                    parsed = datetime.fromisoformat(m.group(0))
                except ValueError:
                    parsed = None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
