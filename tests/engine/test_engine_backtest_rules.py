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
import yaml
from engine_slos import good_events_slo

from support import backfill_openmetrics
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO as SLOModel
from tokenslo.core.model import Alerting
from tokenslo.engine import backtest as bt
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import run_promtool, start_prometheus
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups, render_rules
from tokenslo.rules.promtool_tests import (
    alert_check,
    burn_alert_expectation,
    counter_values,
    promtool_file,
)

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
    """(increment a minute, minutes) per counter."""
    return {
        "good": [((1 - ratio) * PER_MINUTE, minutes) for ratio, minutes in SEGMENTS],
        "bad": [(ratio * PER_MINUTE, minutes) for ratio, minutes in SEGMENTS],
    }


def counters() -> dict[str, list[float]]:
    """Per-minute values of each counter (label text → values from 0), for the backfill;
    integers, so promtool's expanding notation of ``increments`` gives the same floats."""
    out = {}
    for kind, segments in increments().items():
        values = [0.0]
        for step, minutes in segments:
            values += [values[-1] + step * (k + 1) for k in range(minutes)]
        out[LABELS[kind]] = values
    return out


def backtested(tmp_path, t0: float, slo: SLOModel) -> bt.Backtest:
    series = {
        labels: [(t0 + i * MIN, v) for i, v in enumerate(values)]
        for labels, values in counters().items()
    }
    workdir = tmp_path / "prometheus"
    backfill_openmetrics(workdir / "data", "demo_requests_total", series)
    prom = start_prometheus({"global": {"scrape_interval": "1m"}}, workdir)
    try:
        with PromClient(prom.url, timeout=60) as client:
            return bt.backtest([slo], client, t0 + RANGE[0], t0 + RANGE[1], EVAL)
    finally:
        prom.stop()


def firing_at(result: bt.Backtest, at: float) -> list[bt.AlertInterval]:
    return [
        i for i in result.intervals[SLO.name] if i.start <= at and (i.end is None or at < i.end)
    ]


def promtool_checks(result: bt.Backtest, t0: float, slo: SLOModel) -> list[dict]:
    """At every evaluation of the range: exactly the alerts the backtest has firing."""
    groups = generate_rule_groups([slo])
    checks = []
    steps = round((RANGE[1] - RANGE[0]) / EVAL)
    for k in range(steps + 1):
        at = RANGE[0] + k * EVAL
        expected = [
            burn_alert_expectation(
                slo,
                groups,
                long_window=format_duration(i.long_window),
                short_window=format_duration(i.short_window),
            )
            for i in firing_at(result, t0 + at)
        ]
        checks.append(alert_check(at, c.BURN_ALERT, expected))
    return checks


@pytest.mark.parametrize("slo", [SLO, AWARE], ids=["static", "traffic-aware"])
def test_backtest_starts_and_ends_equal_prometheus_rule_evaluation(tmp_path, slo):
    t0 = (time.time() // DAY - 5) * DAY  # whole days, so 30s evaluations line up
    result = backtested(tmp_path, t0, slo)
    intervals = result.intervals[SLO.name]
    # The scenario must exercise what it claims: pages and tickets that start and end.
    assert {i.severity for i in intervals} == {"page", "ticket"}, intervals
    assert all(i.end is not None for i in intervals), intervals
    assert any(i.severity == "ticket" and i.long_window == DAY for i in intervals), intervals

    (tmp_path / "rules.yaml").write_text(render_rules([slo]))
    test = promtool_file(
        ["rules.yaml"],
        generate_rule_groups([slo])[0]["interval"],
        [
            {
                "name": "backtest-vs-rules",
                "interval": format_duration(MIN),
                # Expanding notation: promtool parses a long explicit list very slowly.
                "input_series": [
                    {
                        "series": f"demo_requests_total{{{LABELS[kind]}}}",
                        "values": counter_values(segments),
                    }
                    for kind, segments in increments().items()
                ],
                "alert_rule_test": promtool_checks(result, t0, slo),
            }
        ],
    )
    assert test["evaluation_interval"] == format_duration(EVAL)
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False, width=10**9))
    done = run_promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[:8000]  # the first mismatches
    for i in intervals:
        print(
            f"{i.severity} {format_duration(i.long_window)}: "
            f"{(i.start - t0) / HOUR:.4f}h – {(i.end - t0) / HOUR:.4f}h"
        )
