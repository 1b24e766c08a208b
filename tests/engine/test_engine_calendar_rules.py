"""``slo status`` and the generated calendar records agree, in one real Prometheus.

History (``test_engine_calendar.backfill_around``: one sample every 15s, 100 requests a
sample) around M, yesterday's midnight UTC: 15 minutes with 50 % failing, then from
M − 5m to M + 40m 10 %. The SLO: 80 % per calendar day in UTC (rolling window 1h).
The recorded series come from the real rule evaluator: ``promtool tsdb
create-blocks-from rules`` evaluates the SLO group (5m counts, every 30s) against the
raw history, then, once Prometheus serves those, the calendar group's period-to-date
counts (every 5m, its own interval), then its budget.

Like Prometheus, the backfiller evaluates a group at a fixed offset within its interval.
So each 5m step t of the calendar sum reads the 5m count recorded at t − δ (δ < 30s,
the same for every step: the sum covers the period shifted back by δ; the 10 % phase
starts 5m early so that the shift sees only it), and the record read at M + 40m is the
one of the last calendar evaluation before, at E. By hand: floor((E − M) / 5m) steps of
2 000 events (400 a minute), 200 errors each; error ratio 0.1, budget remaining
1 − 0.1 / 0.2 = 0.5 — what ``slo status`` reports (the rolling hour would say
1 − 0.2 / 0.2 = 0: 15 of its 60 minutes fail at 50 %). The overview dashboard's
calendar gauge reads the same number.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from test_engine_calendar import backfill_around

from tokenslo.dashboards.generate import render_dashboards
from tokenslo.engine.evaluator import evaluate
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import run_promtool, start_prometheus
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups
from tokenslo.spec.loader import load_text

pytestmark = pytest.mark.prometheus

SLO_TEXT = """\
version: tokenslo/v1
service: cal
slos:
  - name: daily
    objective: 80
    window: 1h
    calendar: {period: day, timezone: UTC}
    sli:
      events:
        total: sum(increase(demo_requests_total{svc="cal"}[{{window}}]))
        bad: sum(increase(demo_requests_total{svc="cal",code="500"}[{{window}}]))
    alerting:
      policy:
        - {severity: page, budget_percent: 50, long_window: 10m, short_window: 2m}
"""


def stages(slo_group: dict, calendar_group: dict) -> list[dict]:
    """The recording rules in the order they read each other: the backfiller evaluates
    every rule of a run against what Prometheus already serves, so a rule reading another
    one's output needs a later run (alerting rules dropped: it takes recording rules only)."""
    records = [r for r in slo_group["rules"] if "record" in r]
    to_date, budget = calendar_group["rules"][:2], calendar_group["rules"][2:]
    return [
        {**slo_group, "rules": [r for r in records if "ratio" not in r["record"]]},
        {**calendar_group, "rules": to_date},
        {**calendar_group, "rules": budget},
    ]


def backfill_rules(prom_url: str, group: dict, start: float, end: float, out: Path) -> None:
    """Evaluate the rules of ``group`` from ``start`` to before ``end`` with the real rule
    backfiller."""
    records = group
    out.mkdir(parents=True)
    rules = out.parent / f"{out.name}.yml"
    rules.write_text(yaml.safe_dump({"groups": [records]}, sort_keys=False, width=10_000))
    done = run_promtool(
        "tsdb",
        "create-blocks-from",
        "rules",
        f"--url={prom_url}",
        f"--start={start:.0f}",
        f"--end={end:.0f}",
        f"--output-dir={out}",
        str(rules),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def add_blocks(source: Path, data: Path) -> None:
    for block in source.iterdir():
        shutil.move(str(block), str(data / block.name))


def calendar_gauge_expr(slo) -> str:
    """The query of the overview dashboard's "budget left this <period>" gauge."""
    overview = render_dashboards([slo])["slo-overview.json"]
    (panel,) = [p for p in overview["panels"] if "budget left this day" in p.get("title", "")]
    (target,) = panel["targets"]
    return target["expr"]


def test_status_and_recorded_calendar_budget_agree(tmp_path):
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = today.timestamp() - 86400
    workdir = tmp_path / "prometheus"
    backfill_around(workdir / "data", midnight, minutes_after=40, calm_before=5)
    ((slo,), _) = load_text(SLO_TEXT, "daily.yaml")
    slo_group, calendar_group = generate_rule_groups([slo])
    at, start = midnight + 40 * 60, midnight - 20 * 60
    assert at < time.time() - 3600  # the whole history lies in the past
    config = {"global": {"scrape_interval": "15s"}}
    for n, group in enumerate(stages(slo_group, calendar_group)):
        prom = start_prometheus(config, workdir)
        try:
            backfill_rules(prom.url, group, start, at + 60, tmp_path / f"stage-{n}")
        finally:
            prom.stop()
        add_blocks(tmp_path / f"stage-{n}", workdir / "data")
    prom = start_prometheus(config, workdir)
    try:
        with PromClient(prom.url) as client:
            (status,) = evaluate([slo], client, at=at)
            budget = client.query(c.CALENDAR_BUDGET_REMAINING_RECORD, at)
            errors = client.query(c.errors_record(c.PERIOD_TO_DATE), at)
            events = client.query(c.events_record(c.PERIOD_TO_DATE), at)
            (stamp,) = client.query(f"timestamp({c.events_record(c.PERIOD_TO_DATE)})", at)
            gauge = client.query(calendar_gauge_expr(slo), at)
    finally:
        prom.stop()
    assert (status.period_start, status.window) == (midnight, 40 * 60)
    assert status.error_budget_remaining == pytest.approx(0.5)
    assert [float(s["value"][1]) for s in budget] == [pytest.approx(0.5)]
    assert [float(s["value"][1]) for s in gauge] == [pytest.approx(0.5)]  # the dashboard's
    evaluated = float(stamp["value"][1])
    assert at - 300 < evaluated <= at
    steps = (evaluated - midnight) // 300
    assert [float(s["value"][1]) for s in events] == [pytest.approx(steps * 2000)]
    assert [float(s["value"][1]) for s in errors] == [pytest.approx(steps * 200)]
