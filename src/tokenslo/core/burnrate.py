"""Burn-rate math and the multi-window, multi-burn-rate policy. Pure: no I/O.

Formulas follow the Google SRE Workbook, "Alerting on SLOs". They are also the
oracles of the alert-timing tests, so every expected time there comes from here.
"""

from __future__ import annotations

import math

from tokenslo.core.model import SLO, BurnWindow, budget_of

HOUR = 3600.0
DAY = 86400.0

# (severity, share of the period's budget consumed, long window); the short
# window is 1/12 of the long one, as in the Workbook.
DEFAULT_POLICY_SPEC: tuple[tuple[str, float, float], ...] = (
    ("page", 0.02, 1 * HOUR),
    ("page", 0.05, 6 * HOUR),
    ("ticket", 0.10, 1 * DAY),
    ("ticket", 0.10, 3 * DAY),
)
SHORT_WINDOW_DIVISOR = 12
# `for` of a ticket: a fifth of the short window. Pages get none: scoring the policies
# on synthetic incident sets (src/tokenslo/rules/README.md, "Choosing `for` and the
# interval") showed a page's `for` filters no false page (its long window already ignores
# blips, and its short window keeps a true condition true for minutes) and delays every
# page by a fifth of the short window (1m on the fastest); a ticket's `for` filtered
# false tickets.
FOR_DIVISOR = 5


def default_for(severity: str, short_window: float) -> float:
    """Seconds a condition must hold before it fires when the policy does not say."""
    return 0.0 if severity == "page" else short_window / FOR_DIVISOR


def burn_factor(budget_fraction: float, period: float, long_window: float) -> float:
    """Burn rate at which ``budget_fraction`` of the budget burns in ``long_window``.

    30d: 2% in 1h → 14.4, 5% in 6h → 6, 10% in 1d → 3, 10% in 3d → 1.
    """
    return budget_fraction * period / long_window


def default_policy(period: float) -> tuple[BurnWindow, ...]:
    """The Workbook's four alert conditions for an SLO over ``period`` seconds."""
    return tuple(
        BurnWindow(
            severity=severity,  # type: ignore[arg-type]
            budget_fraction=fraction,
            long_window=long_window,
            short_window=long_window / SHORT_WINDOW_DIVISOR,
            for_=default_for(severity, long_window / SHORT_WINDOW_DIVISOR),
        )
        for severity, fraction, long_window in DEFAULT_POLICY_SPEC
    )


def policy_for(slo: SLO) -> tuple[BurnWindow, ...]:
    """The alert conditions in force for ``slo``: its override or the default, filtered
    by which severities are switched on."""
    windows = slo.alerting.policy or default_policy(slo.window)
    enabled = {"page": slo.alerting.page, "ticket": slo.alerting.ticket}
    return tuple(w for w in windows if enabled[w.severity])


def factor_of(slo: SLO, window: BurnWindow) -> float:
    return burn_factor(window.budget_fraction, slo.window, window.long_window)


def threshold_of(slo: SLO, window: BurnWindow) -> float:
    """Error ratio above which the condition holds: factor × (1 − objective)."""
    return factor_of(slo, window) * slo.error_budget


def traffic_aware_threshold(
    budget_fraction: float, error_budget: float, period_events: float, long_events: float
) -> float:
    """Pyrra's traffic-aware ("dynamic") threshold: ``(N_W / N_w) × c × (1 − objective)``.

    ``N_W`` events in the SLO period, ``N_w`` in the long window, ``c`` the share of the
    budget the condition allows to burn in ``w``. Multiplied by ``N_w`` it says the alert
    fires once the long window holds more than ``c × (1 − objective) × N_W`` errors: a
    fixed share of the *absolute* budget, whatever the traffic right now. At steady
    traffic ``N_W / N_w = W / w`` and this equals the static ``threshold_of``.
    Infinite when the long window saw no events (nothing can burn the budget).
    """
    if long_events <= 0:
        return math.inf
    return period_events / long_events * budget_fraction * error_budget


def threshold_at(
    slo: SLO, window: BurnWindow, period_events: float | None, long_events: float | None
) -> float:
    """Error ratio above which ``window``'s condition holds, given the events counted
    over the SLO period and over the long window at that instant.

    The one place evaluator and backtest take a threshold from: static SLOs ignore the
    counts; traffic-aware SLOs without both counts get an unreachable (infinite) one.
    """
    if not slo.alerting.traffic_aware:
        return threshold_of(slo, window)
    if period_events is None or long_events is None:
        return math.inf
    return traffic_aware_threshold(
        window.budget_fraction, slo.error_budget, period_events, long_events
    )


def sli(good: float, total: float) -> float | None:
    """Fraction of good events; None when there was no traffic (0/0 is not 100%)."""
    if total <= 0:
        return None
    return good / total


def error_ratio(errors: float, total: float) -> float | None:
    if total <= 0:
        return None
    return errors / total


def burn_rate(error_ratio_: float, objective_percent: float) -> float:
    """How many times faster than sustainable the budget burns (1.0 = exactly on budget)."""
    return error_ratio_ / budget_of(objective_percent)


def error_budget_remaining(error_ratio_over_period: float, objective_percent: float) -> float:
    """Share of the period's budget left: 1 − consumed. Negative once overspent."""
    return 1.0 - burn_rate(error_ratio_over_period, objective_percent)


def budget_consumed(burn_rate_: float, duration: float, period: float) -> float:
    """Share of a period's error budget that ``duration`` seconds at ``burn_rate_`` use
    (a 15-minute outage of a 99.9% SLO burns at 1000x: 1000 × 900 / 30d ≈ 35%)."""
    return burn_rate_ * duration / period


def time_to_exhaustion(
    budget_remaining: float, current_burn_rate: float, period: float
) -> float | None:
    """Seconds until the budget is gone at the current burn rate.

    0 when already exhausted; None when not burning (never exhausts).
    """
    if budget_remaining <= 0:
        return 0.0
    if current_burn_rate <= 0:
        return None
    return budget_remaining * period / current_burn_rate


def detection_time(
    factor: float, objective_percent: float, long_window: float, error_rate: float
) -> float | None:
    """Seconds from the start of a constant ``error_rate`` until the long window's
    error ratio crosses the threshold: ``factor × (1 − objective) × long_window / error_rate``.

    None when the rate never crosses (``error_rate ≤ factor × (1 − objective)``).
    Assumes no errors before the incident and constant traffic.
    """
    threshold = factor * budget_of(objective_percent)
    if error_rate <= threshold or error_rate <= 0:
        return None
    return threshold * long_window / error_rate


def reset_time(
    factor: float,
    objective_percent: float,
    window: float,
    error_rate: float,
    incident_duration: float,
) -> float:
    """Seconds after an incident ends until ``window``'s error ratio is back at or
    under the threshold.

    At ``t`` after recovery the window still holds ``min(D, window − t)`` seconds of
    errors, so the ratio is ``error_rate × min(D, window − t) / window``; it drops to
    the threshold once ``window − t ≤ threshold × window / error_rate``.
    """
    threshold = factor * budget_of(objective_percent)
    if error_rate <= 0:
        return 0.0
    keep = threshold * window / error_rate  # error seconds the window may hold
    if min(incident_duration, window) <= keep:
        return 0.0
    return window - keep


def pair_reset_time(
    factor: float,
    objective_percent: float,
    long_window: float,
    short_window: float,
    error_rate: float,
    incident_duration: float,
) -> float:
    """A multi-window alert resolves when the *first* of its two windows recovers."""
    return min(
        reset_time(factor, objective_percent, long_window, error_rate, incident_duration),
        reset_time(factor, objective_percent, short_window, error_rate, incident_duration),
    )


def is_finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
