"""Calendar periods: where the current day, week, month, quarter and year start and end.

Expected instants are written out by hand as UTC wall-clock times (with the zone's
offset worked out by hand for Europe/Berlin: UTC+1 in winter, UTC+2 in summer).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tokenslo.core.calendar import period_bounds, timezone_error
from tokenslo.core.model import Calendar


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


AT = utc(2026, 5, 14, 15, 30)  # Thursday 14 May 2026, 15:30 UTC


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("day", utc(2026, 5, 14), utc(2026, 5, 15)),
        ("week", utc(2026, 5, 11), utc(2026, 5, 18)),  # Monday to Monday
        ("month", utc(2026, 5, 1), utc(2026, 6, 1)),
        ("quarter", utc(2026, 4, 1), utc(2026, 7, 1)),
        ("year", utc(2026, 1, 1), utc(2027, 1, 1)),
    ],
)
def test_periods_in_utc(period, start, end):
    assert period_bounds(Calendar(period), AT) == (start, end)


def test_an_instant_on_the_boundary_opens_the_next_period():
    assert period_bounds(Calendar("month"), utc(2026, 6, 1)) == (utc(2026, 6, 1), utc(2026, 7, 1))


def test_december_rolls_into_the_next_year():
    assert period_bounds(Calendar("quarter"), utc(2026, 11, 30)) == (
        utc(2026, 10, 1),
        utc(2027, 1, 1),
    )
    assert period_bounds(Calendar("week"), utc(2026, 12, 31, 12)) == (
        utc(2026, 12, 28),
        utc(2027, 1, 4),
    )


def test_local_midnight_in_the_zone_across_a_dst_change():
    """Berlin: March 2026 starts at 23:00 UTC the day before (UTC+1); the clocks go
    forward on 29 March, so April starts at 22:00 UTC (UTC+2): 31 days less an hour."""
    berlin = Calendar("month", "Europe/Berlin")
    start, end = period_bounds(berlin, utc(2026, 3, 15))
    assert (start, end) == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert end - start == 31 * 86400 - 3600
    # 23:30 UTC on 31 March is already 1 April in Berlin
    assert period_bounds(berlin, utc(2026, 3, 31, 23, 30))[0] == utc(2026, 3, 31, 22)


def test_timezone_names_are_checked():
    assert timezone_error("Europe/Berlin") is None
    assert "unknown time zone 'Mars/Olympus'" in (timezone_error("Mars/Olympus") or "")
