"""Traffic-aware SLOs through a real Prometheus: ``evaluate`` and ``backtest``.

Backfilled history (1 sample a second), a static and a traffic-aware SLO per
service. 90 % over 10m; one page: 10 % of the budget in 20s (short 5s, no
``for``). Static threshold 0.1 × 600/20 × 0.1 = 0.3; traffic-aware: the 20s
window must hold more than 0.1 × 0.1 × N_10m errors. Both "switch" to errors at
the same instant:

- night: 100/s for 200s, 10/s for 40s, then 5 of 10/s failing. Static: 5τ / 200 >
  0.3 after τ = 12s. Traffic-aware needs > 0.01 × 20 400 ≈ 204 errors in 20s
  but the window holds at most 100: never.
- peak: 50/s for 220s, 1 000/s for 20s, then 50 of 1 000/s failing (5 %). Static:
  5 % < 30 %, never. Traffic-aware: 50τ > 0.01 × (31 000 + 1 000τ), τ = 7.75s.
"""

from __future__ import annotations

import time

import pytest
from test_engine_prometheus import _backfill

from tokenslo.engine import backtest as bt
from tokenslo.engine.evaluator import evaluate
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import start_prometheus
from tokenslo.spec.loader import load_paths

pytestmark = pytest.mark.prometheus

SLOS = """\
version: tokenslo/v1
service: demo
slos:
"""
SLO = """\
  - name: {name}
    objective: 90
    window: 10m
    sli:
      events:
        total: sum(increase(demo_requests_total{{svc="{svc}"}}[{{{{window}}}}]))
        bad: sum(increase(demo_requests_total{{svc="{svc}",code="500"}}[{{{{window}}}}]))
    alerting:
      burn_rate: {mode}
      policy:
        - {{severity: page, budget_percent: 10, long_window: 20s, short_window: 5s, for: 0s}}
"""
NIGHT_STATIC = 12.0  # seconds after the switch
PEAK_AWARE = 0.01 * 31_000 / (50 - 0.01 * 1_000)  # = 7.75
SLACK = 2.0  # one range step, and increase() seeing a change one sample (1 s) late


def counters(segments: list[tuple[float, float, int]], start: float) -> dict:
    """Per-second samples of ok/failed counters for (rps, failed/s, seconds) segments."""
    ok, failed, t, n_ok, n_bad = [], [], start, 0.0, 0.0
    for rps, bad, seconds in segments:
        for _ in range(seconds):
            ok.append((t, n_ok))
            failed.append((t, n_bad))
            t, n_ok, n_bad = t + 1, n_ok + rps - bad, n_bad + bad
    return {"200": ok, "500": failed}


def test_evaluator_and_backtest_follow_the_traffic(tmp_path):
    switch = float(int(time.time()) - 300)
    start = switch - 240
    night = counters([(100, 0, 200), (10, 0, 40), (10, 5, 31)], start)
    peak = counters([(50, 0, 220), (1_000, 0, 20), (1_000, 50, 31)], start)
    series = {
        (svc, code): s for svc, c in (("night", night), ("peak", peak)) for code, s in c.items()
    }
    workdir = tmp_path / "prometheus"
    _backfill(workdir / "data", series)
    path = tmp_path / "slos.yaml"
    path.write_text(
        SLOS
        + "".join(
            SLO.format(name=f"{svc}-{mode}", svc=svc, mode=mode)
            for svc in ("night", "peak")
            for mode in ("static", "traffic-aware")
        )
    )
    slos = load_paths([path])
    prom = start_prometheus({"global": {"scrape_interval": "1s"}}, workdir)
    try:
        with PromClient(prom.url) as client:
            states = {s.name: s.state for s in evaluate(slos, client, at=switch + 20)}
            result = bt.backtest(slos, client, switch - 15, switch + 25, 1.0)
    finally:
        prom.stop()
    assert states == {
        "night-static": "page",
        "night-traffic-aware": "ok",
        "peak-static": "ok",
        "peak-traffic-aware": "page",
    }
    assert result.intervals["night-traffic-aware"] == []
    assert result.intervals["peak-static"] == []
    for name, theory in (("night-static", NIGHT_STATIC), ("peak-traffic-aware", PEAK_AWARE)):
        [interval] = result.intervals[name]
        assert abs(interval.start - (switch + theory)) <= SLACK, (name, interval.start - switch)
        assert interval.end is None
        print(f"{name}: fired {interval.start - switch:.3f}s after the switch, math {theory}s")
