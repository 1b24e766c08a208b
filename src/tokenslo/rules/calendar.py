"""Calendar SLOs → period-to-date records (errors, events, budget remaining). Pure: no I/O.

PromQL has no range that starts at a date, but inside a subquery ``time()`` (and
``year()``, ``month()`` … of ``vector(time())``) is the *inner* step's time. Each period
gets an integer id (days since the epoch, weeks since Monday 1970-01-05, year × 12 +
month …). A sum over the steps of the current period is then written as one term per
residue k of the id modulo ``RESIDUES``:

    (sum_over_time((X and on() (ID(step) % 3 == k))[R:step]) and on() (ID(now) % 3 == k))

R is the longest period (31d for months). A parity (modulo 2) is not enough: a 31d
range at 1 March reaches back into January, whose parity is March's. Modulo 3 two
whole periods lie between equal residues, and no range R reaches across them.

X is a count over the step (the 5m counts, or the 1h counts for months and longer), and
a count at step t covers (t − step, t], so a step belongs to the period of t − 1s. Steps
sit on absolute multiples of the step, so periods must start on them: the zone's UTC
offset must be a multiple of the step, and fixed (PromQL's clock is UTC; a DST zone's
days are 23 or 25 hours long), else the SLO gets no calendar records (a ``Skip``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, Calendar, CalendarPeriod
from tokenslo.core.windows import BASE_WINDOW

RESIDUES = 3  # see the module docstring: why not a parity
ROLLUP_WINDOW = 3600.0  # months, quarters and years sum 1h counts, at a 1h step
ROLLUP_PERIODS: tuple[CalendarPeriod, ...] = ("month", "quarter", "year")
CALENDAR_INTERVAL = 300.0  # the calendar group's evaluation interval at time scale 1
DAY = 86400.0
# 1970-01-05 00:00 UTC, the first Monday after the epoch: weeks count from it.
FIRST_MONDAY = 4 * DAY
# The longest period of each kind: the subquery range R.
LONGEST: dict[CalendarPeriod, float] = {
    "day": DAY,
    "week": 7 * DAY,
    "month": 31 * DAY,
    "quarter": 92 * DAY,
    "year": 366 * DAY,
}
# How far around "now" a time zone's UTC offset must stay the same: the current period
# may have started up to a year ago, and rules are not regenerated every year.
OFFSET_CHECK_BEFORE = 366 * DAY
OFFSET_CHECK_AFTER = 3 * 366 * DAY


@dataclass(frozen=True)
class CalendarPlan:
    """How to sum a calendar SLO's period: local time = UTC + ``offset`` seconds;
    counts of ``step`` seconds summed at a ``step`` subquery step."""

    calendar: Calendar
    offset: float
    step: float


@dataclass(frozen=True)
class Skip:
    """Why an SLO gets no calendar records; ``field`` is the SLO field to blame."""

    slo: SLO
    field: str
    message: str


def fixed_offset(timezone: str, now: float) -> float | None:
    """The UTC offset (seconds) of ``timezone`` when it is the same every day from a year
    before ``now`` to three years after, else None (DST, or a change of offset)."""
    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(now - OFFSET_CHECK_BEFORE, UTC)
    days = int((OFFSET_CHECK_BEFORE + OFFSET_CHECK_AFTER) / DAY)
    offsets = set()
    for day in range(0, days + 1):
        offset = (start + timedelta(days=day)).astimezone(zone).utcoffset()
        assert offset is not None  # a ZoneInfo always has one
        offsets.add(offset.total_seconds())
        if len(offsets) > 1:
            return None
    return offsets.pop()


def plan(slo: SLO, time_scale: float, now: float) -> CalendarPlan | Skip | None:
    """How to record ``slo``'s period to date, why not (``Skip``), or None (no calendar)."""
    calendar = slo.calendar
    if calendar is None:
        return None
    if time_scale != 1:
        return Skip(
            slo,
            "calendar",
            "calendar periods are dates, which a time-scaled rehearsal does not have;"
            " no period-to-date records (slo status still counts the period)",
        )
    if slo.timeslices is not None:
        return Skip(
            slo,
            "timeslices",
            "a timeslices SLO gets no period-to-date records: its 5m counts of slice"
            " judgements include the judgement exactly 5m old (Prometheus 2 ranges are"
            " closed), so summing them counts every 10th judgement twice; slo status"
            " counts the period's slices exactly",
        )
    offset = fixed_offset(calendar.timezone, now)
    if offset is None:
        return Skip(
            slo,
            "calendar.timezone",
            f"{calendar.timezone} changes its UTC offset (daylight saving time); PromQL"
            " clocks are UTC, so no period-to-date records are generated for this SLO"
            " (slo status still counts the period exactly; alerts are unaffected)",
        )
    step = ROLLUP_WINDOW if calendar.period in ROLLUP_PERIODS else BASE_WINDOW
    if offset % step:
        step = BASE_WINDOW
    if offset % step:
        return Skip(
            slo,
            "calendar.timezone",
            f"{calendar.timezone} is {format_duration(abs(offset))} off UTC, not a multiple"
            " of 5m; no period-to-date records are generated for this SLO",
        )
    return CalendarPlan(calendar, offset, step)


def plans(slos: Sequence[SLO], time_scale: float, now: float) -> list[CalendarPlan | Skip | None]:
    return [plan(slo, time_scale, now) for slo in slos]


def skips(slos: Sequence[SLO], time_scale: float, now: float) -> list[Skip]:
    """Calendar SLOs left without period-to-date records, for warnings."""
    return [p for p in plans(slos, time_scale, now) if isinstance(p, Skip)]


def clock(offset: float, lag: float = 0.0) -> str:
    """``vector(time())`` shifted to local time (and back by ``lag`` seconds)."""
    shift = offset - lag
    if shift == 0:
        return "vector(time())"
    sign = "+" if shift > 0 else "-"
    return f"vector(time() {sign} {abs(shift):g})"


def period_id(period: CalendarPeriod, v: str) -> str:
    """An integer that changes exactly when ``period`` does, at the instant ``v``."""
    if period == "day":
        return f"floor({v} / {DAY:g})"
    if period == "week":
        return f"floor(({v} - {FIRST_MONDAY:g}) / {7 * DAY:g})"
    if period == "month":
        return f"(year({v}) * 12 + month({v}))"
    if period == "quarter":
        return f"(year({v}) * 4 + floor((month({v}) - 1) / 3))"
    return f"year({v})"


def residue_is(period: CalendarPeriod, v: str, k: int) -> str:
    return f"{period_id(period, v)} % {RESIDUES} == {k}"


def period_to_date(count: str, p: CalendarPlan) -> str:
    """The sum of the step counts ``count`` (a selector) since the period started; no
    result before the period's first step has ended."""
    period, span, step = p.calendar.period, format_duration(LONGEST[p.calendar.period]), p.step
    inner, outer = clock(p.offset, lag=1), clock(p.offset)
    terms = [
        f"(sum_over_time(({count} and on() ({residue_is(period, inner, k)}))"
        f"[{span}:{format_duration(step)}]) and on() ({residue_is(period, outer, k)}))"
        for k in range(RESIDUES)
    ]
    return " or ".join(terms)
