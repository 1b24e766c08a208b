"""A calendar-aligned SLO through a real Prometheus: the budget counts from the period's
start only; alerts stay on their rolling windows.

History (backfilled, one sample every 15s, 100 requests a sample) around M, the
local midnight of yesterday in Asia/Kolkata (UTC+5:30, no DST: M = yesterday 00:00 UTC
minus 5h30m): 20 minutes with 50 % failing before M, 20 minutes with 10 % after.
Evaluated at M + 20m, by hand:

- calendar SLO (``period: day``, Asia/Kolkata): the budget window is the 20 minutes
  since M, error ratio 0.1; objective 80 % → 1 - 0.1 / 0.2 = 0.5 of the budget left.
- the same SLO without ``calendar`` (rolling 1h): all 40 minutes, (0.5 + 0.1) / 2 =
  0.3, 1 - 0.3 / 0.2 = -0.5 (overspent).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_engine_prometheus import _backfill
from test_engine_traffic_aware_prometheus import SLOS

from tokenslo.engine.evaluator import evaluate, iso_time, to_json
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import start_prometheus
from tokenslo.spec.loader import load_paths

pytestmark = pytest.mark.prometheus

SLO = """\
  - name: {name}
    objective: 80
    window: 1h
{calendar}    sli:
      events:
        total: sum(increase(demo_requests_total{{svc="cal"}}[{{{{window}}}}]))
        bad: sum(increase(demo_requests_total{{svc="cal",code="500"}}[{{{{window}}}}]))
    alerting:
      policy:
        - {{severity: page, budget_percent: 50, long_window: 10m, short_window: 2m}}
"""
CALENDAR = "    calendar: {period: day, timezone: Asia/Kolkata}\n"
KOLKATA = 5.5 * 3600  # UTC+5:30 all year


def backfill_around(
    data_dir: Path, midnight: float, minutes_after: int, calm_before: int = 0
) -> None:
    """The module docstring's history: a sample every 15s, 100 requests each, from
    ``midnight`` − 20m (50 % failing) to ``midnight`` + ``minutes_after`` (10 % failing
    from ``calm_before`` minutes before midnight on)."""
    ok, failed, n_ok, n_bad = [], [], 0.0, 0.0
    for k in range(-80, 4 * minutes_after + 1):
        ok.append((midnight + 15 * k, n_ok))
        failed.append((midnight + 15 * k, n_bad))
        bad = 50 if k < -4 * calm_before else 10  # the increment up to the next sample
        n_ok, n_bad = n_ok + 100 - bad, n_bad + bad
    _backfill(data_dir, {("cal", "200"): ok, ("cal", "500"): failed})


def test_budget_counts_from_the_local_start_of_the_day(tmp_path):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = today.timestamp() - 86400 - KOLKATA
    workdir = tmp_path / "prometheus"
    backfill_around(workdir / "data", midnight, minutes_after=20)
    path = tmp_path / "slos.yaml"
    path.write_text(
        SLOS + SLO.format(name="daily", calendar=CALENDAR) + SLO.format(name="rolling", calendar="")
    )
    slos = load_paths([path])
    at = midnight + 20 * 60
    assert at < time.time() - 3600  # the whole history lies in the past
    prom = start_prometheus({"global": {"scrape_interval": "15s"}}, workdir)
    try:
        with PromClient(prom.url) as client:
            statuses = {s.name: s for s in evaluate(slos, client, at=at)}
    finally:
        prom.stop()
    daily, rolling = statuses["daily"], statuses["rolling"]
    assert daily.error_ratio == pytest.approx(0.1)
    assert daily.error_budget_remaining == pytest.approx(0.5)
    assert (daily.window, daily.period_start) == (20 * 60, midnight)
    assert rolling.error_ratio == pytest.approx(0.3)
    assert rolling.error_budget_remaining == pytest.approx(-0.5)
    assert rolling.period_start is None
    # the alert windows are rolling for both: the same burn over the last 10m
    assert daily.burn_rates == rolling.burn_rates == {"10m": pytest.approx(0.5), "2m": 0.5}
    row = {r["name"]: r for r in to_json(list(statuses.values()))}
    assert row["daily"]["period_start"] == iso_time(midnight) and row["daily"]["window"] == "20m"
    assert "period_start" not in row["rolling"]
