"""A timeslices SLO through a real Prometheus: ``evaluate`` counts bad and judged slices.

Backfilled history, one sample every 15s, 100 requests a sample, 80 minutes from S (a
whole minute); minute m is (S + 60m, S + 60(m+1)]. Minutes 30 and 40 fail entirely,
minutes 15-24 and 60-69 have no traffic, the rest succeed entirely. The SLO: 1m slices,
good at >= 95 %, objective 90 % over 1h, evaluated at S + 80m.

By hand: the evaluator judges the slice ending at every multiple of 30s (like the
rules, once per 30s evaluation); the slice ending at t holds the increments of the
samples t-30s, t-15s and t.

- a failing minute b makes three judgements bad: t = S+60b+30s (2 of 3 increments
  failed), S+60(b+1) (3 of 3), S+60(b+1)+30s (1 of 3); each is far above 5 %.
  Minutes 30 and 40: 6 bad judgements.
- a quiet stretch of minutes q..q+9 leaves the judgements t = S+60(q+1) …
  S+60(q+10) without events: 19 not judged. Minutes 15-24 cover the window's start
  (S+20m), so whether the range includes its first instant does not matter: the
  window's judged slices run from S+25m30s to S+80m, (4800 - 1530) / 30 + 1 = 110,
  minus the 19 of minutes 60-69: 91.
- bad-slice share 6 / 91; budget 10 %, so 1 - (6/91) / 0.1 of it remains.
"""

from __future__ import annotations

import time

import pytest
from test_engine_prometheus import _backfill
from test_engine_traffic_aware_prometheus import SLOS

from tokenslo.engine.evaluator import evaluate
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import start_prometheus
from tokenslo.spec.loader import load_paths

pytestmark = pytest.mark.prometheus

SLO = """\
  - name: {name}
    objective: 90
    window: 1h
    timeslices: {{window: 1m, target: 95}}
    sli:
      events:
        total: sum(increase(demo_requests_total{{svc="{svc}"}}[{{{{window}}}}]))
        bad: sum(increase(demo_requests_total{{svc="{svc}",code="500"}}[{{{{window}}}}]))
    alerting:
      policy:
        - {{severity: page, budget_percent: 50, long_window: 10m, short_window: 2m}}
"""
FAILING = {30, 40}
QUIET = set(range(15, 25)) | set(range(60, 70))
MINUTES = 80
PER_SAMPLE = 100.0


def minute_counters(start: float, failing: set[int], quiet: set[int]) -> dict[str, list]:
    """ok/failed counter samples every 15s; the sample at S+60m+15k (k=1..4) closes an
    increment of minute m."""
    ok, failed, n_ok, n_bad = [(start, 0.0)], [(start, 0.0)], 0.0, 0.0
    for minute in range(MINUTES):
        for k in range(1, 5):
            if minute not in quiet:
                if minute in failing:
                    n_bad += PER_SAMPLE
                else:
                    n_ok += PER_SAMPLE
            t = start + 60 * minute + 15 * k
            ok.append((t, n_ok))
            failed.append((t, n_bad))
    return {"200": ok, "500": failed}


def test_status_counts_bad_and_judged_slices(tmp_path):
    start = float((int(time.time()) - 2 * 3600) // 60 * 60)
    at = start + 60 * MINUTES
    series = {
        ("mixed", code): samples for code, samples in minute_counters(start, FAILING, QUIET).items()
    }
    series |= {
        ("idle", code): samples
        for code, samples in minute_counters(start, set(), set(range(MINUTES))).items()
    }
    workdir = tmp_path / "prometheus"
    _backfill(workdir / "data", series)
    path = tmp_path / "slos.yaml"
    path.write_text(SLOS + "".join(SLO.format(name=s, svc=s) for s in ("mixed", "idle", "ghost")))
    slos = load_paths([path])
    prom = start_prometheus({"global": {"scrape_interval": "15s"}}, workdir)
    try:
        with PromClient(prom.url) as client:
            statuses = {s.name: s for s in evaluate(slos, client, at=at)}
    finally:
        prom.stop()
    mixed = statuses["mixed"]
    assert mixed.error_ratio == pytest.approx(6 / 91)
    assert mixed.error_budget_remaining == pytest.approx(1 - (6 / 91) / 0.1)
    assert mixed.state == "ok", mixed.reason  # the last 10m hold only good slices
    assert mixed.burn_rates == {"10m": 0.0, "2m": 0.0}
    assert statuses["idle"].state == "no_traffic", statuses["idle"].reason
    assert statuses["ghost"].state == "no_data", statuses["ghost"].reason


MEAN_SLO = """\
  - name: mean
    objective: 90
    window: 5m
    timeslices: {window: 1m, method: mean-ratio}
    sli:
      events:
        total: sum(increase(demo_requests_total{svc="mean"}[{{window}}]))
        bad: sum(increase(demo_requests_total{svc="mean",code="500"}[{{window}}]))
    alerting:
      policy:
        - {severity: page, budget_percent: 50, long_window: 5m, short_window: 1m}
"""


def test_status_of_a_mean_ratio_slo_is_the_mean_of_its_slices_ratios(tmp_path):
    """The history of tests/rules/test_rules_ratio_timeslices.py, whose docstring computes
    the 5m window at S+10m by hand: minutes 0-4 quiet, 5-7 100 requests a sample with 10
    failing, 8-9 1000 a sample; ten judged slices, mean error ratio 0.06 + 1/1100 (the
    events' ratio would be 120 / 9200)."""
    start = float((int(time.time()) - 2 * 3600) // 60 * 60)
    per_sample = [(0, 0)] * 20 + [(90, 10)] * 12 + [(1000, 0)] * 8  # (ok, failed)
    ok, failed = [(start, 0.0)], [(start, 0.0)]
    for k, (good, bad) in enumerate(per_sample, start=1):
        ok.append((start + 15 * k, ok[-1][1] + good))
        failed.append((start + 15 * k, failed[-1][1] + bad))
    workdir = tmp_path / "prometheus"
    _backfill(workdir / "data", {("mean", "200"): ok, ("mean", "500"): failed})
    path = tmp_path / "slos.yaml"
    path.write_text(SLOS + MEAN_SLO)
    prom = start_prometheus({"global": {"scrape_interval": "15s"}}, workdir)
    try:
        with PromClient(prom.url) as client:
            (status,) = evaluate(load_paths([path]), client, at=start + 600)
    finally:
        prom.stop()
    mean = (6 * 0.1 + 1 / 110) / 10
    assert status.error_ratio == pytest.approx(mean, rel=1e-9)
    assert status.error_budget_remaining == pytest.approx(1 - mean / 0.1, rel=1e-9)
