"""The backtest against Prometheus' own evaluation of the generated rules.

One history (1 sample a minute) goes two ways: into a real Prometheus as TSDB blocks
(``promtool tsdb create-blocks-from openmetrics``), which the backtest queries; and,
sample for sample, into ``promtool test rules`` as input series, where Prometheus'
rule engine evaluates the generated rules every 30s and reports the firing alerts.
The promtool file asserts, at *every* evaluation in the range, exactly the burn
alerts the backtest says are firing then, so every page and ticket start and end
must agree to the evaluation. The 1d ticket's start depends on its derived window
(a sum of 5m counts), which raw counters over 1d would put 150 s early. The same
holds for the SLO paging traffic-aware, whose threshold also sums the 5m events over
the period and the long window (raw counts put its 1d and 3d tickets 150 s early too).
"""

from __future__ import annotations

import dataclasses
import time

import pytest
from engine_backtest import (
    assert_rules_agree,
    backfilled_backtest,
    backfilled_prometheus,
    cumulative,
)
from engine_slos import good_events_slo

from tokenslo.core.durations import format_duration
from tokenslo.core.model import Alerting
from tokenslo.engine import backtest as bt
from tokenslo.reports.data import collect

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
PER_MINUTE = 10_000  # requests a minute
SLO = good_events_slo("svc", objective=99.9)  # 30d, default policy: two pages, two tickets
# The same SLO paging traffic-aware: the rules compare with the period's summed 5m events
# over the long window's (the history, 33 h, is all of the period's traffic).
AWARE = dataclasses.replace(SLO, alerting=Alerting(burn_rate="traffic-aware"))
EVAL = 30.0
# (error ratio, minutes): an 8-hour burn at 1 % (10x budget) opens the 1d ticket through
# its long (derived) window and the 6h page; it clears; a 10-minute outage then pages
# and opens both tickets through their short windows; everything ends before RANGE does.
SEGMENTS = [(0.0, 360), (0.01, 480), (0.0, 600), (1.0, 10), (0.0, 470)]
RANGE = (HOUR, 32 * HOUR)  # seconds after the history starts
LABELS = {"good": 'job="svc",code="200"', "bad": 'job="svc",code="500"'}


def increments() -> dict[str, list[tuple[float, int]]]:
    """(increment a minute, minutes) per counter (label text)."""
    return {
        LABELS["good"]: [((1 - ratio) * PER_MINUTE, minutes) for ratio, minutes in SEGMENTS],
        LABELS["bad"]: [(ratio * PER_MINUTE, minutes) for ratio, minutes in SEGMENTS],
    }


@pytest.mark.parametrize("slo", [SLO, AWARE], ids=["static", "traffic-aware"])
def test_backtest_starts_and_ends_equal_prometheus_rule_evaluation(tmp_path, slo):
    t0 = (time.time() // DAY - 5) * DAY  # whole days, so 30s evaluations line up
    result, _ = backfilled_backtest(
        tmp_path / "prometheus", slo, cumulative(increments()), MIN, t0, RANGE, EVAL
    )
    intervals = result.intervals[SLO.name]
    # The scenario must exercise what it claims: pages and tickets that start and end.
    assert {i.severity for i in intervals} == {"page", "ticket"}, intervals
    assert all(i.end is not None for i in intervals), intervals
    assert any(i.severity == "ticket" and i.long_window == DAY for i in intervals), intervals
    assert_rules_agree(tmp_path, result, slo, increments(), MIN, t0, RANGE, EVAL)
    for i in intervals:
        print(
            f"{i.severity} {format_duration(i.long_window)}: "
            f"{(i.start - t0) / HOUR:.4f}h – {(i.end - t0) / HOUR:.4f}h"
        )


def test_a_report_draws_the_alerts_the_rules_fire(tmp_path):
    """The report's computed alert spans are the backtest's, which the test above proves
    equal to Prometheus' rule evaluation on this history; decided from the raw windows
    it charts, the 1d ticket would start early."""
    t0 = (time.time() // DAY - 5) * DAY
    start, end = t0 + RANGE[0], t0 + RANGE[1]
    with backfilled_prometheus(
        tmp_path / "prometheus", cumulative(increments()), MIN, t0
    ) as client:
        model = collect([SLO], client, start, end, EVAL)
        rules = bt.backtest([SLO], client, start, end, EVAL)
        counts = bt.fetch_range_counts([SLO], client, start - bt.lead_time([SLO], EVAL), end, EVAL)
    raw = bt.compute_backtest([SLO], counts, start, end, EVAL)

    def spans(result: bt.Backtest) -> list[tuple]:
        return sorted(
            (i.severity, format_duration(i.long_window), max(i.start, start), i.end)
            for i in result.intervals[SLO.name]
        )

    drawn = sorted(
        (a.severity, a.windows.split("/")[0], a.start, a.end)
        for a in model.alerts
        if a.source == "backtest"
    )
    assert drawn == spans(rules)
    assert drawn != spans(raw)  # the rules' derived windows are what moves them
