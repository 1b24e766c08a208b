"""Dashboards of a traffic-aware SLO: its page thresholds are query series (the recorded
traffic ratio × the condition's budget share), not constant threshold steps; checked
in goldens, and every such query evaluated in a real Prometheus running the generated
rules (scraping itself: the SLOs count its own HTTP requests)."""

from __future__ import annotations

import json
import math
import time

import pytest
from dash_goldens import GOLDEN_DIR, goldens, slos

from tokenslo.dashboards import schema as dash_schema
from tokenslo.dashboards.context import build_context
from tokenslo.dashboards.queries import queries, substitute
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import free_port
from tokenslo.rules.generate import render_rules
from tokenslo.waiting import wait_until

from dash_fixtures import REPO  # isort: skip

RATIO = "tokenslo:slo_traffic_ratio:"
# (long window, budget share c) of the default policy's two pages
PAGES = {"1h": 0.02, "6h": 0.05}


def test_checked_in_traffic_aware_dashboards_match_a_fresh_render():
    fresh = goldens()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in GOLDEN_DIR.glob("*.json")}
    assert set(fresh) == set(on_disk)
    stale = sorted(name for name in fresh if fresh[name] != on_disk[name])
    assert not stale, f"{stale} stale: run scripts/refresh-goldens"
    assert "tests/render/dash_goldens.py" in (REPO / "scripts" / "refresh-goldens").read_text()


def test_the_traffic_aware_dashboards_validate_against_the_schema():
    for name, text in goldens().items():
        assert dash_schema.validate(json.loads(text)) == [], name


def moving(doc: dict) -> list[str]:
    return [q.expr for q in queries("d", doc) if RATIO in q.expr]


def test_the_detail_burn_panel_draws_the_moving_page_lines_and_static_steps_only():
    detail = json.loads(goldens()["slo-detail.json"])
    (burn,) = [p for p in detail["panels"] if p.get("title") == "Burn rate per window"]
    exprs = [t["expr"] for t in burn["targets"]]
    assert [e for e in exprs if RATIO in e] == [
        f'{RATIO}{w}{{slo="$slo", slo=~"api-traffic-aware"}} * {c}' for w, c in PAGES.items()
    ]
    # the constant steps are the static SLO's page factors (14.4 and 6), which the
    # traffic-aware SLO shares nominally; alone it would have none
    steps = burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 6.0, 14.4]
    aware_only = build_context([s for s in slos() if s.alerting.traffic_aware])
    assert [s["value"] for s in aware_only.burn_steps()["steps"]] == [None]
    static_only = build_context([s for s in slos() if not s.alerting.traffic_aware])
    assert static_only.moving_thresholds() == []
    # the fleet views show the fast page's moving line beside the burn rates
    for name in ("token-oncall.json", "token-executive.json"):
        assert moving(json.loads(goldens()[name])) == [
            f'{RATIO}1h{{slo=~"api-traffic-aware"}} * 0.02'
        ]


@pytest.mark.prometheus
def test_the_moving_thresholds_evaluate_against_the_generated_rules(prometheus_factory):
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "self", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
        ],
    }
    rules = render_rules(slos(), time_scale=60)  # 1h → 60 s, the 30d period → 12 h
    prom = prometheus_factory(config, port=port, rule_files={"slo.rules.yml": rules})
    exprs = sorted({e for doc in goldens().values() for e in moving(json.loads(doc))})
    assert len(exprs) == 4  # the detail's two (with $slo) and the fleet's two
    with PromClient(prom.url) as client:

        def values(slo: str) -> dict[str, list[float]]:
            out = {}
            for expr in exprs:
                result = client.query(substitute(expr, {"slo": slo}), time.time())
                out[expr] = [float(s["value"][1]) for s in result]
            return out

        def all_present() -> dict[str, list[float]] | None:
            got = values("api-traffic-aware")
            return got if all(got.values()) else None

        got = wait_until(all_present, 60, 0.5, "the traffic ratio records of both pages")
        for expr, found in got.items():
            share = next(c for w, c in PAGES.items() if f"{RATIO}{w}{{" in expr)
            # one series (the traffic-aware SLO's); a Prometheus younger than the period
            # holds all its traffic in it, so N_period ≥ N_long: the line is at least c
            assert len(found) == 1 and math.isfinite(found[0]), (expr, found)
            assert found[0] >= share * (1 - 1e-9), (expr, found)
        # the static SLO has no moving line (the detail's queries select nothing)
        static = values("api-static")
        assert [static[e] for e in exprs if "$slo" in e] == [[], []]
