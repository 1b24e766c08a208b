"""The backtest run shared by the Prometheus and VictoriaMetrics engine tests, and the
promtool checks that compare a backtest with Prometheus' own rule evaluation."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from support import backfill_openmetrics
from tokenslo.cli import main
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO
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

METRIC = "demo_requests_total"


def flip_intervals(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    """Run ``slo backtest ... --format json`` over the SLOs ``flip`` and ``ghost`` (no
    series): exit 3 naming ghost alone, and flip's page and ticket interval by severity."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 3 and "no data in the range for SLO(s): ghost" in err
    result = json.loads(out)
    assert result["slos"]["ghost"] == []
    intervals = {i["severity"]: i for i in result["slos"]["flip"]}
    assert set(intervals) == {"page", "ticket"}
    return intervals


def firing_at(result: bt.Backtest, slo: SLO, at: float) -> list[bt.AlertInterval]:
    """The backtest's intervals of ``slo`` firing at ``at``."""
    return [
        i for i in result.intervals[slo.name] if i.start <= at and (i.end is None or at < i.end)
    ]


def promtool_checks(
    result: bt.Backtest,
    slo: SLO,
    groups: list[dict],
    t0: float,
    span: tuple[float, float],
    every: float,
) -> list[dict]:
    """At every evaluation (``every`` seconds) of ``span`` (seconds after ``t0``, where
    promtool's time 0 is): exactly the burn alerts the backtest has firing then."""
    checks = []
    for k in range(round((span[1] - span[0]) / every) + 1):
        at = span[0] + k * every
        expected = [
            burn_alert_expectation(
                slo,
                groups,
                long_window=format_duration(i.long_window),
                short_window=format_duration(i.short_window),
            )
            for i in firing_at(result, slo, t0 + at)
        ]
        checks.append(alert_check(at, c.BURN_ALERT, expected))
    return checks


def cumulative(increments: dict[str, list[tuple[float, int]]]) -> dict[str, list[float]]:
    """Each counter's value at every sample from 0 (label text → values), from its
    (increment a sample, samples) segments: with integer increments, exactly the floats
    promtool's expanding notation of the same segments gives."""
    out = {}
    for labels, segments in increments.items():
        values = [0.0]
        for step, samples in segments:
            values += [values[-1] + step * (k + 1) for k in range(samples)]
        out[labels] = values
    return out


@contextlib.contextmanager
def backfilled_prometheus(
    workdir: Path, counters: dict[str, list[float]], scrape: float, t0: float
) -> Iterator[PromClient]:
    """A client of a real Prometheus holding ``counters`` (``METRIC`` label text → value
    every ``scrape`` from ``t0``) as TSDB blocks; stopped on the way out."""
    series = {
        labels: [(t0 + i * scrape, v) for i, v in enumerate(values)]
        for labels, values in counters.items()
    }
    backfill_openmetrics(workdir / "data", METRIC, series)
    prom = start_prometheus({"global": {"scrape_interval": format_duration(scrape)}}, workdir)
    try:
        with PromClient(prom.url, timeout=60) as client:
            yield client
    finally:
        prom.stop()


def backfilled_backtest(
    workdir: Path,
    slo: SLO,
    counters: dict[str, list[float]],
    scrape: float,
    t0: float,
    span: tuple[float, float],
    every: float,
) -> tuple[bt.Backtest, bool]:
    """``slo``'s backtest over ``span`` (seconds after ``t0``) on a real Prometheus holding
    ``counters`` (``backfilled_prometheus``), and whether that server's range selectors
    are left-closed."""
    with backfilled_prometheus(workdir, counters, scrape, t0) as client:
        result = bt.backtest([slo], client, t0 + span[0], t0 + span[1], every)
        return result, bt.ranges_left_closed(client)


def assert_rules_agree(
    tmp_path: Path,
    result: bt.Backtest,
    slo: SLO,
    increments: dict[str, list[tuple[float, int]]],
    scrape: float,
    t0: float,
    span: tuple[float, float],
    every: float,
) -> None:
    """``promtool test rules`` on ``slo``'s generated rules, fed the same counters
    (``METRIC`` label text → (increment, samples) segments every ``scrape``), finds
    exactly the backtest's firing burn alerts at every evaluation of ``span``."""
    groups = generate_rule_groups([slo])
    (tmp_path / "rules.yaml").write_text(render_rules([slo]))
    test = promtool_file(
        ["rules.yaml"],
        groups[0]["interval"],
        [
            {
                "name": "backtest-vs-rules",
                "interval": format_duration(scrape),
                # Expanding notation: promtool parses a long explicit list very slowly.
                "input_series": [
                    {"series": f"{METRIC}{{{labels}}}", "values": counter_values(segments)}
                    for labels, segments in increments.items()
                ],
                "alert_rule_test": promtool_checks(result, slo, groups, t0, span, every),
            }
        ],
    )
    assert test["evaluation_interval"] == format_duration(every)
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False, width=10**9))
    done = run_promtool("test", "rules", "test.yaml", cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[:8000]  # the first mismatches
