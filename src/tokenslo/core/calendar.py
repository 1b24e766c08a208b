"""Calendar periods (this month, this week …) for calendar-aligned SLO budgets. Pure.

A calendar SLO's budget counts from the start of the current period in its time zone:
days start at local midnight, weeks on Monday, months on the 1st, quarters in January,
April, July and October, years on 1 January. Local midnight is taken in the zone's
own clock, so a period is 23 or 25 hours long across a DST change, as a calendar's is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tokenslo.core.model import CALENDAR_PERIODS, Calendar, CalendarPeriod

__all__ = ["CALENDAR_PERIODS", "period_bounds", "timezone_error"]

# OpenSLO duration shorthands of one calendar period, and back.
OPENSLO_PERIODS: dict[str, CalendarPeriod] = {
    "1d": "day",
    "1w": "week",
    "1M": "month",
    "1Q": "quarter",
    "1Y": "year",
}
OPENSLO_DURATIONS = {period: text for text, period in OPENSLO_PERIODS.items()}
# The rolling window an imported calendar SLO alerts on: the period's nominal length.
NOMINAL_WINDOWS: dict[CalendarPeriod, float] = {
    "day": 86400.0,
    "week": 7 * 86400.0,
    "month": 30 * 86400.0,
    "quarter": 90 * 86400.0,
    "year": 365 * 86400.0,
}


def timezone_error(name: str) -> str | None:
    """Why ``name`` is not a usable IANA time zone, or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (an IANA name such as UTC or Europe/Berlin)"
    return None


def _first_day(calendar: Calendar, local: datetime) -> tuple[int, int, int]:
    """(year, month, day) of the period holding the local time ``local``."""
    if calendar.period == "day":
        return local.year, local.month, local.day
    if calendar.period == "week":
        monday = local.date() - timedelta(days=local.weekday())
        return monday.year, monday.month, monday.day
    if calendar.period == "month":
        return local.year, local.month, 1
    if calendar.period == "quarter":
        return local.year, 3 * ((local.month - 1) // 3) + 1, 1
    return local.year, 1, 1


def _next_first_day(calendar: Calendar, year: int, month: int, day: int) -> tuple[int, int, int]:
    if calendar.period in ("day", "week"):
        step = 1 if calendar.period == "day" else 7
        nxt = datetime(year, month, day) + timedelta(days=step)
        return nxt.year, nxt.month, nxt.day
    months = {"month": 1, "quarter": 3, "year": 12}[calendar.period]
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1, 1


def period_bounds(calendar: Calendar, at: float) -> tuple[float, float]:
    """Unix start and end of the calendar period holding the instant ``at``."""
    zone = ZoneInfo(calendar.timezone)
    first = _first_day(calendar, datetime.fromtimestamp(at, zone))
    start = datetime(*first, tzinfo=zone)
    end = datetime(*_next_first_day(calendar, *first), tzinfo=zone)
    return start.timestamp(), end.timestamp()
