"""What a report shows, as plain data: the SLO report and the game day fill the same model.

Kept free of I/O and of formatting so that ``data`` (Prometheus) and the
game day (its own timeline and experiment results) can build it, and the HTML
and Markdown renderers only read it. Times are unix seconds; windows are
nominal Prometheus durations (``1h``) even when the lab ran with compressed time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tokenslo.engine.evaluator import SLOStatus

AlertSource = Literal["backtest", "prometheus"]


@dataclass(frozen=True)
class FaultInterval:
    """A fault the caller injected (shaded on every chart, or only ``slos`` when given)."""

    start: float
    end: float | None  # None: still active at the end of the report
    label: str
    slos: tuple[str, ...] = ()  # empty: relevant to every SLO


@dataclass(frozen=True)
class AlertSpan:
    """An alert condition's firing interval.

    ``backtest``: computed from the SLO's data (tokenslo.engine.backtest, ``for``
    applied); ``prometheus``: what the generated rules actually fired (``ALERTS``).
    """

    slo: str
    severity: str
    windows: str  # nominal "long/short", e.g. "1h/5m"
    start: float
    end: float | None  # None: still firing at the end of the report
    source: AlertSource


@dataclass(frozen=True)
class Threshold:
    """A line on a chart: where one alert condition starts to hold. Horizontal at
    ``value``, unless ``points`` give it per step (a traffic-aware threshold moves with
    the traffic; None where the long window saw no events, so nothing can cross it):
    ``value`` is then its steady-traffic value."""

    label: str
    severity: str
    value: float
    points: tuple[tuple[float, float | None], ...] = ()

    def values(self) -> list[float]:
        """Every value the line takes (for the chart's axis limits)."""
        moving = [v for _t, v in self.points if v is not None]
        return moving if self.points else [self.value]


@dataclass(frozen=True)
class Series:
    """One line: ``(unix time, value or None)`` per step; None breaks the line."""

    label: str
    points: tuple[tuple[float, float | None], ...]

    @property
    def present(self) -> int:
        return sum(1 for _t, v in self.points if v is not None)


@dataclass(frozen=True)
class SLOSeries:
    """What the chart of one SLO plots."""

    slo: str
    objective: float  # ratio, 0.999
    sli_window: str  # the window the SLI line is computed over
    sli: Series
    burn: tuple[Series, ...]  # one per alert window
    sli_thresholds: tuple[Threshold, ...]  # 1 − threshold per condition
    burn_thresholds: tuple[Threshold, ...]  # burn factor per condition (threshold / budget)


@dataclass(frozen=True)
class Experiment:
    """One game-day experiment's outcome; ``None`` where the experiment could not tell."""

    name: str
    status: str  # passed | failed | error | interrupted | skipped
    expected_alerts: tuple[str, ...] = ()
    fired_alerts: tuple[str, ...] = ()
    detection_time: float | None = None  # seconds from fault start to first alert
    detection_theory: float | None = None  # burnrate.detection_time for the fault
    budget_consumed: float | None = None  # share of the period's budget, 0.02 = 2%
    recovery_time: float | None = None  # seconds from fault end until alerts resolved
    notes: str = ""


@dataclass
class ReportModel:
    title: str
    start: float
    end: float
    step: float
    generated_at: float
    statuses: list[SLOStatus] = field(default_factory=list)  # evaluated at ``end``
    series: dict[str, SLOSeries] = field(default_factory=dict)  # per SLO name
    alerts: list[AlertSpan] = field(default_factory=list)
    faults: list[FaultInterval] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)
    interrupted: bool = False  # the run behind the report stopped early
    source: str = ""  # where the numbers came from (host:port, never credentials)
    time_scale: float = 1.0  # windows were divided by this (lab rehearsal)
    notes: list[str] = field(default_factory=list)

    def alerts_of(self, slo: str) -> list[AlertSpan]:
        return [a for a in self.alerts if a.slo == slo]

    def faults_of(self, slo: str) -> list[FaultInterval]:
        return [f for f in self.faults if not f.slos or slo in f.slos]
