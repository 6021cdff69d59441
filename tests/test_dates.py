"""The one date parser that pages, feeds and sitemaps share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from digest.dates import parse_date

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-14", datetime(2026, 11, 14, tzinfo=UTC)),  # a bare date is midnight UTC
        ("2026-11-14T10:00Z", datetime(2026, 11, 14, 10, tzinfo=UTC)),
        ("2026-11-14T10:00+02:00", datetime(2026, 11, 14, 10, tzinfo=PLUS_TWO)),
        ("  2026-11-14T10:00:30  ", datetime(2026, 11, 14, 10, 0, 30, tzinfo=UTC)),
        ("Sat, 14 Nov 2026 10:00:00 +0200", datetime(2026, 11, 14, 10, tzinfo=PLUS_TWO)),
        ("2026-11-14 10:00:00.0 CEST", datetime(2026, 11, 14, 10, tzinfo=UTC)),  # ISO start
    ],
)
def test_dates_in_the_forms_pages_feeds_and_sitemaps_use(value: str, expected: datetime) -> None:
    parsed = parse_date(value)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", ["", "   ", "yesterday", "2026-13-45", None, 20261114, ["x"]])
def test_anything_else_is_none_never_an_error(value: object) -> None:
    assert parse_date(value) is None
