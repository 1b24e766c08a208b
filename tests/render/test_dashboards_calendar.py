"""A calendar-aligned SLO gets a second budget gauge on the overview dashboard, reading
its calendar record; a rolling SLO does not (its real query: tests/engine/
test_engine_calendar_rules.py)."""

from __future__ import annotations

import dataclasses

from dash_fixtures import REPO

from tokenslo.core.model import Calendar
from tokenslo.dashboards.generate import render_dashboards
from tokenslo.rules import conventions as c
from tokenslo.spec.loader import load_paths


def test_only_calendar_slos_get_a_budget_gauge_for_their_calendar_period():
    slos = load_paths([REPO / "slo"])
    monthly = dataclasses.replace(slos[0], calendar=Calendar("month", "Asia/Kolkata"))
    overview = render_dashboards([monthly, *slos[1:]])["slo-overview.json"]
    gauges = {
        p["title"]: p["targets"][0]["expr"]
        for p in overview["panels"]
        if p.get("type") == "gauge" and "budget left" in p.get("title", "")
    }
    calendar = {t: e for t, e in gauges.items() if c.CALENDAR_BUDGET_REMAINING_RECORD in e}
    assert calendar == {
        f"{monthly.name} · budget left this month (Asia/Kolkata)":
            f'{c.CALENDAR_BUDGET_REMAINING_RECORD}{{slo="{monthly.name}"}}',
    }  # fmt: skip
    assert len(gauges) == len(slos) + 1  # every SLO keeps its rolling gauge
