"""Traffic-aware thresholds in the evaluator and the backtest (no Prometheus).

Expected values are worked out by hand from ``(N_W / N_long) × c × (1 − objective)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from engine_slos import DAY, events_slo

from tokenslo.core import burnrate
from tokenslo.core.model import TRAFFIC_AWARE, Alerting
from tokenslo.engine import backtest as bt
from tokenslo.engine import evaluator as ev

AT = 1_700_000_000.0
HOUR = 3600.0
PERIOD = 30 * DAY


def aware(slo):
    return replace(slo, alerting=replace(slo.alerting, burn_rate=TRAFFIC_AWARE))


def test_threshold_equals_static_at_steady_traffic_and_scales_with_it():
    slo = aware(events_slo("a"))  # 99.9 % over 30d
    page = burnrate.policy_for(slo)[0]  # 2 % of the budget in 1h
    steady = burnrate.threshold_at(slo, page, 720_000, 1_000)  # 30d / 1h = 720
    assert steady == pytest.approx(720 * 0.02 * 0.001)  # 0.0144, the static threshold
    assert burnrate.threshold_at(slo, page, 720_000, 100) == pytest.approx(0.144)  # lull
    assert burnrate.threshold_at(slo, page, 720_000, 10_000) == pytest.approx(0.00144)  # peak
    assert burnrate.threshold_at(slo, page, 720_000, 0) == math.inf
    assert burnrate.threshold_at(slo, page, None, 1_000) == math.inf
    static = events_slo("b")
    assert burnrate.threshold_at(static, page, 1, 1_000_000) == pytest.approx(0.0144)


def _counts(slo, period_total, long_total, long_errors, short_ratio):
    """Counts at one instant: no errors except in the 1h and 5m windows."""
    counts = {w: ev.WindowCounts(errors=0.0, total=1_000.0) for w in ev.status_windows(slo)}
    counts[PERIOD] = ev.WindowCounts(errors=long_errors, total=period_total)
    counts[HOUR] = ev.WindowCounts(errors=long_errors, total=long_total)
    counts[300.0] = ev.WindowCounts(errors=short_ratio * 100, total=100.0)
    return counts


def test_evaluator_low_traffic_handful_pages_static_only():
    # 12 failures of 600 requests in a night hour, 6 000 000 events in the period:
    # static 2 % > 1.44 %; traffic-aware needs > 0.02 × 0.001 × 6e6 = 120 errors.
    static, slo = events_slo("s"), aware(events_slo("t"))
    counts = _counts(slo, 6_000_000, 600, 12, 0.1)
    assert ev.status_from_counts(static, counts, AT).state == "page"
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "ok"
    fast = status.alerts[0]
    assert fast.threshold == pytest.approx(6_000_000 / 600 * 0.02 * 0.001)  # 0.2
    assert fast.factor == pytest.approx(200)
    assert not fast.firing


def test_evaluator_high_traffic_pages_traffic_aware_only():
    # a surge hour of 1 200 000 requests with 121 failures (0.01 %), 6e6 in the period:
    # static needs 1.44 %; traffic-aware needs > 120 errors in the hour.
    static, slo = events_slo("s"), aware(events_slo("t"))
    counts = _counts(slo, 6_000_000, 1_200_000, 121, 0.001)
    assert ev.status_from_counts(static, counts, AT).state == "ok"
    status = ev.status_from_counts(slo, counts, AT)
    assert status.state == "page"
    assert status.alerts[0].threshold == pytest.approx(5 * 0.02 * 0.001)
    just_under = _counts(slo, 6_000_000, 1_200_000, 119, 0.001)
    assert ev.status_from_counts(slo, just_under, AT).state == "ok"


def test_json_has_no_infinite_threshold_without_traffic():
    slo = aware(events_slo("t"))
    counts = _counts(slo, 6_000_000, 0, 0, 0.0)
    row = ev.to_json([ev.status_from_counts(slo, counts, AT)])[0]
    assert row["alerts"][0]["threshold"] is None
    json.dumps(row, allow_nan=False)


def test_backtest_fetches_the_period_and_fires_on_the_absolute_loss():
    slo = aware(events_slo("t", alerting=Alerting(ticket=False)))
    assert PERIOD in ev.decision_windows(slo)
    assert PERIOD not in ev.decision_windows(events_slo("s"))
    page = burnrate.policy_for(slo)[0]  # 1h/5m, for 1m
    step, start, end = 60.0, 10_000.0, 10_000.0 + 1_800
    times = bt.step_grid(start - bt.lead_time([slo], step), end, step)
    # 6e6 events in the period, 1 200 000 an hour; from `start` the hour holds
    # 5 + 10 a minute errors, so more than 0.02 × 0.001 × 6e6 = 120 from start + 12 min.
    counts: bt.RangeCounts = {slo.name: {}}
    for t in times:
        ms = round(t * 1000)
        errors = 5 + (t - start) / 60 * 10 if t >= start else 0.0
        counts[slo.name].setdefault(PERIOD, {})[ms] = ev.WindowCounts(errors, 6_000_000)
        counts[slo.name].setdefault(HOUR, {})[ms] = ev.WindowCounts(errors, 1_200_000)
        counts[slo.name].setdefault(300.0, {})[ms] = ev.WindowCounts(min(errors, 50), 100_000)
    result = bt.compute_backtest([slo], counts, start, end, step)
    [interval] = result.intervals[slo.name]
    assert interval.start == start + 12 * 60 + page.for_
    assert interval.end is None
