"""Expected alert timings of a chaos experiment, from the engine's burn-rate math. Pure.

A burn-rate alert holds when the error ratio over both its long and its short
window exceeds ``factor × (1 − objective)``; with a constant error rate from the
injection on, each window crosses at ``burnrate.detection_time``; the alert then
waits its ``for``. Under a rules time scale every window and ``for`` is divided
by the scale, exactly as the rule generator does.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenslo.durations import format_duration
from tokenslo.engine import burnrate
from tokenslo.spec.model import SLO, BurnWindow


@dataclass(frozen=True)
class Expectation:
    """When one alert condition should fire (seconds after the fault started)."""

    long_window: str  # nominal, as in the alert's label
    short_window: str
    factor: float
    for_seconds: float  # scaled
    theory_seconds: float | None  # None: this error rate never fires it

    def to_json(self) -> dict:
        return {
            "long_window": self.long_window,
            "short_window": self.short_window,
            "burn_factor": self.factor,
            "for_seconds": round(self.for_seconds, 3),
            "theory_seconds": None
            if self.theory_seconds is None
            else round(self.theory_seconds, 3),
        }


def conditions(slo: SLO, severity: str, long_window: str = "") -> list[BurnWindow]:
    """The SLO's alert conditions of ``severity`` (optionally only the one on ``long_window``)."""
    return [
        w
        for w in burnrate.policy_for(slo)
        if w.severity == severity
        and (not long_window or format_duration(w.long_window) == long_window)
    ]


def expectation(slo: SLO, window: BurnWindow, error_rate: float, time_scale: float) -> Expectation:
    factor = burnrate.factor_of(slo, window)
    crossings = [
        burnrate.detection_time(factor, slo.objective, span / time_scale, error_rate)
        for span in (window.long_window, window.short_window)
    ]
    for_seconds = window.for_ / time_scale
    theory = None
    if all(t is not None for t in crossings):
        theory = max(crossings) + for_seconds  # type: ignore[type-var]
    return Expectation(
        long_window=format_duration(window.long_window),
        short_window=format_duration(window.short_window),
        factor=factor,
        for_seconds=for_seconds,
        theory_seconds=theory,
    )


def first_to_fire(
    slo: SLO, severity: str, error_rate: float, time_scale: float, long_window: str = ""
) -> Expectation | None:
    """The condition expected to fire first; None when none of them would fire."""
    expected = [
        expectation(slo, w, error_rate, time_scale) for w in conditions(slo, severity, long_window)
    ]
    firing = [e for e in expected if e.theory_seconds is not None]
    return min(firing, key=lambda e: e.theory_seconds) if firing else None  # type: ignore[arg-type, return-value]


def resolution_seconds(
    slo: SLO,
    long_window: str,
    error_rate: float,
    incident_seconds: float,
    time_scale: float,
    severity: str = "page",
) -> float | None:
    """Seconds after recovery until the condition on ``long_window`` stops holding."""
    found = conditions(slo, severity, long_window)
    if not found:
        return None
    window = found[0]
    return burnrate.pair_reset_time(
        burnrate.factor_of(slo, window),
        slo.objective,
        window.long_window / time_scale,
        window.short_window / time_scale,
        error_rate,
        incident_seconds,
    )


def slack_seconds(
    scrape_interval: float, evaluation_interval: float, poll_interval: float
) -> float:
    """Lag between the errors and what the probe sees: the errors wait for a scrape, the
    rule sees them at its next evaluation, ``for`` is checked at evaluations only (one
    more interval), and the probe polls."""
    return 2 * scrape_interval + 2 * evaluation_interval + poll_interval
