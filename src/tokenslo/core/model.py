"""The one internal SLO model every component works from.

Input formats (tokenslo v1 YAML, OpenSLO v1) are parsed elsewhere and mapped
here; the evaluator, rule generator, dashboards and load-test gate only ever see
these frozen dataclasses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["page", "ticket"]
# How a condition's error-ratio threshold is set: a constant (the SRE Workbook), or
# scaled by the traffic in the SLO period over the traffic in the long window (Pyrra's
# "dynamic" burn rates). See tokenslo.core.burnrate.
BurnRateMode = Literal["static", "traffic-aware"]
STATIC: BurnRateMode = "static"
TRAFFIC_AWARE: BurnRateMode = "traffic-aware"


def budget_of(objective_percent: float) -> float:
    """Allowed error ratio for an objective in percent (99.9 → 0.001).

    Rounded to 12 digits so that 1 − 0.999 is exactly 0.001 and a rate sitting
    exactly on a threshold compares as the Workbook says it should.
    """
    return round((100.0 - objective_percent) / 100.0, 12)


@dataclass(frozen=True)
class Source:
    """Where a definition came from, so later errors can point back at the YAML."""

    file: str
    line: int | None = None


@dataclass(frozen=True)
class EventsSLI:
    """Ratio of events. PromQL strings contain a ``{{window}}`` placeholder.

    Exactly one of ``good``/``bad`` is set.
    """

    total: str
    good: str | None = None
    bad: str | None = None


@dataclass(frozen=True)
class LatencySLI:
    """Fraction of a histogram's observations at or under ``threshold`` seconds.

    ``selector`` holds label matchers without braces, e.g. ``grant_type="client_credentials"``.
    """

    metric: str
    threshold: float
    selector: str = ""


SLI = EventsSLI | LatencySLI


@dataclass(frozen=True)
class BurnWindow:
    """One multi-window alert condition of the SRE Workbook policy.

    The alert fires when the error ratio over both ``long_window`` and
    ``short_window`` exceeds ``factor × (1 − objective)``, where the factor is
    derived from the budget fraction (see ``tokenslo.core.burnrate``).
    """

    severity: Severity
    budget_fraction: float  # share of the period's budget consumed over long_window
    long_window: float  # seconds
    short_window: float  # seconds
    for_: float = 0.0  # seconds the condition must hold before firing


@dataclass(frozen=True)
class Alerting:
    page: bool = True
    ticket: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # None means the default policy, derived from the SLO's window.
    policy: tuple[BurnWindow, ...] | None = None
    burn_rate: BurnRateMode = STATIC

    @property
    def traffic_aware(self) -> bool:
        """Thresholds scale with the events over the period and the long window."""
        return self.burn_rate == TRAFFIC_AWARE


# How slices make the SLI: the share of good slices (OpenSLO ``Timeslices``), or the mean
# of the slices' good-event ratios (OpenSLO ``RatioTimeslices``).
TimesliceMethod = Literal["good-slices", "mean-ratio"]
GOOD_SLICES: TimesliceMethod = "good-slices"
MEAN_RATIO: TimesliceMethod = "mean-ratio"


@dataclass(frozen=True)
class Timeslices:
    """Timeslices budgeting: time is cut into slices of ``window`` seconds, and a slice
    without events is not counted, so one bad minute costs the same at 3 a.m. as at noon.

    ``good-slices`` (OpenSLO ``Timeslices``): a slice is good when its share of good
    events is at least ``target`` percent; the objective applies to the share of good
    slices. ``mean-ratio`` (OpenSLO ``RatioTimeslices``): no target; the objective
    applies to the mean of the slices' good-event ratios.
    """

    window: float  # seconds
    target: float | None = None  # good-slices only: percent a slice needs, 0 < x <= 100
    method: TimesliceMethod = GOOD_SLICES

    @property
    def mean_ratio(self) -> bool:
        """The SLI is the mean of the slices' ratios (no slice is judged good or bad)."""
        return self.method == MEAN_RATIO

    @property
    def allowed_error_ratio(self) -> float:
        """The error ratio above which a slice is bad (95 → 0.05); good-slices only."""
        if self.target is None:
            raise ValueError("a mean-ratio timeslices SLO judges no slice good or bad")
        return budget_of(self.target)

    def judge(self, errors: float, events: float) -> float:
        """A slice's judgement as its rules record it (``promql.slice_judgement``): 1 bad,
        0 good, or (mean-ratio) its error ratio; NaN (not judged) without events."""
        if events <= 0:
            return math.nan
        ratio = errors / events
        if self.mean_ratio:
            return ratio
        return 1.0 if ratio > self.allowed_error_ratio else 0.0


CalendarPeriod = Literal["day", "week", "month", "quarter", "year"]
CALENDAR_PERIODS: tuple[CalendarPeriod, ...] = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class Calendar:
    """A calendar-aligned budget: ``slo status`` counts from the start of the current
    ``period`` in ``timezone`` (see ``tokenslo.core.calendar``). Alerts stay on the
    rolling window: a burn is as urgent on the 1st of the month as on the 30th."""

    period: CalendarPeriod
    timezone: str = "UTC"


@dataclass(frozen=True)
class SLO:
    name: str
    service: str
    objective: float  # percent, 0 < x < 100
    window: float  # rolling period, seconds
    sli: SLI
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    alerting: Alerting = field(default_factory=Alerting)
    loadtest: tuple[str, ...] = ()  # Locust request names this SLO gates
    # Requests a load-test check needs before it can pass; None = the rule of three,
    # ceil(3 / (1 − objective)) (see tokenslo.load.gate.min_requests).
    loadtest_min_requests: int | None = None
    # None: occurrences budgeting (the error ratio of events); else bad-slice share.
    timeslices: Timeslices | None = None
    # None: the budget is the rolling window's; else since the calendar period's start.
    calendar: Calendar | None = None
    source: Source | None = None

    @property
    def target(self) -> float:
        """Objective as a ratio (99.9 → 0.999)."""
        return 1.0 - self.error_budget

    @property
    def error_budget(self) -> float:
        """Allowed error ratio (99.9 → 0.001)."""
        return budget_of(self.objective)
