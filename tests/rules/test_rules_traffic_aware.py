"""Traffic-aware burn rates, proven by the real ``promtool test rules``.

Two 99.9 % / 30d pages-only SLOs read the same counters: one static, one
traffic-aware. A traffic-aware condition holds when the long and the short
window's error ratio exceed ``(N_W / N_long) × c × (1 − objective)``, ``N`` being
events counted over the SLO period W and over the long window. Multiplied out,
the long window must hold more than ``c × 0.001 × N_W`` errors: a fixed share of
the *absolute* budget. The expected times below are worked out by hand from
that inequality (the production threshold function is not used), and each
check names the complete set of firing pages of both SLOs.

Counters take 1 sample a minute; test time starts at 0, so N_W is every event
since the start. Slack, as in test_rules_timing.py: one scrape (a count moves
only when a sample lands) plus one evaluation interval. The traffic ratio is
summed from 5m counts; its edge smear shifts the threshold by well under 1 %
here (the last minutes weigh the same in N_W and N_long, and N_W is huge).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from promtool_run import run_rule_tests
from rules_fixtures import events_bad

from tokenslo.core.durations import parse_duration
from tokenslo.core.model import TRAFFIC_AWARE, Alerting
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups
from tokenslo.rules.promtool_tests import (
    alert_check,
    burn_alert_expectation,
    counter_values,
    promtool_group,
)

MIN = 60.0
HOUR = 3600.0
SCRAPE = MIN
GOOD = 'idp_token_requests_total{code="200"}'
BAD = 'idp_token_requests_total{code="500"}'
BUDGET = 0.001  # 1 − 99.9 %
C_1H, C_6H = 0.02, 0.05  # budget shares of the Workbook's two pages (1h/5m, 6h/30m)
FOR_1H = 1 * MIN  # the 1h page's ``for`` (5m short window / 5)

STATIC = events_bad(name="issuance-static", alerting=Alerting(ticket=False))
AWARE = events_bad(
    name="issuance-traffic-aware", alerting=Alerting(ticket=False, burn_rate=TRAFFIC_AWARE)
)
GROUPS = generate_rule_groups([STATIC, AWARE])
EVAL = parse_duration(GROUPS[0]["interval"])
SLACK = SCRAPE + EVAL

pytestmark = pytest.mark.prometheus


def counters(segments: list[tuple[float, float, float]]) -> dict[str, str]:
    """Counters for consecutive (requests/min, failed/min, minutes) segments."""
    return {
        GOOD: counter_values([(rpm - bad, round(minutes)) for rpm, bad, minutes in segments]),
        BAD: counter_values([(bad, round(minutes)) for _rpm, bad, minutes in segments]),
    }


def page(slo, long_window: str) -> dict:
    short = {"1h": "5m", "6h": "30m"}[long_window]
    return burn_alert_expectation(slo, GROUPS, long_window=long_window, short_window=short)


def pages(at: float, *firing: dict) -> dict:
    return alert_check(at, c.BURN_ALERT, list(firing))


# Day traffic, then a night lull: 10h at 10 000 req/min, 2h at 10 req/min.
DAY_RPM, DAY_MIN = 10_000, 600
NIGHT_RPM, NIGHT_MIN = 10, 120
LULL_END = (DAY_MIN + NIGHT_MIN) * MIN  # T0 of both low-traffic scenarios
N_BEFORE_LULL_END = DAY_RPM * DAY_MIN + NIGHT_RPM * NIGHT_MIN  # 6 001 200


def low_traffic_handful() -> dict:
    """A handful of failures at night: 1 of 10 requests a minute fails for 2h.

    Static: the 1h ratio passes 14.4 × 0.001 after 0.0144 × 600 = 8.64 failures
    (8.64 min), and the 5m ratio (10 %) is far above: it pages.
    Traffic-aware: the 1h window must hold > 0.02 × 0.001 × N_W ≈ 120 errors but
    holds at most 60; the 6h window needs > 300 and holds at most 120: never.
    """
    t0 = LULL_END
    static_theory = 0.0144 * NIGHT_RPM * 60 * MIN  # 8.64 failures at 1/min
    assert C_1H * BUDGET * N_BEFORE_LULL_END > 60  # more than a full hour of failures
    assert C_6H * BUDGET * N_BEFORE_LULL_END > 120  # more than the whole incident
    series = counters([(DAY_RPM, 0, DAY_MIN), (NIGHT_RPM, 0, NIGHT_MIN), (NIGHT_RPM, 1, 120)])
    checks = [
        pages(t0 - MIN),
        pages(t0 + static_theory - SLACK),
        pages(t0 + static_theory + FOR_1H + SLACK, page(STATIC, "1h")),
    ]
    checks += [pages(t0 + m * MIN, page(STATIC, "1h")) for m in range(20, 120, 10)]
    return promtool_group("low-traffic-handful", SCRAPE, series, checks)


def low_traffic_outage() -> dict:
    """All 10 requests a minute fail at night.

    Traffic-aware 1h page: 10·τ errors > 0.02 × 0.001 × (6 001 200 + 10·τ), so
    τ = 120.024 / 9.9998 ≈ 12.0 min; the 5m ratio (100 %) is above the threshold
    ratio (N_W / 600 × 0.00002 ≈ 0.2). The 6h page needs > 300 errors: τ ≈ 30 min,
    after this scenario's last check. Static pages after 51.84 s.
    """
    t0 = LULL_END
    theory = C_1H * BUDGET * N_BEFORE_LULL_END / (NIGHT_RPM - C_1H * BUDGET * NIGHT_RPM) * MIN
    assert theory == pytest.approx(12.0 * MIN, abs=1)
    assert C_6H * BUDGET * N_BEFORE_LULL_END / NIGHT_RPM * MIN > 25 * MIN
    static_fires = t0 + 51.84 + EVAL + FOR_1H
    series = counters(
        [(DAY_RPM, 0, DAY_MIN), (NIGHT_RPM, 0, NIGHT_MIN), (NIGHT_RPM, NIGHT_RPM, 30)]
    )
    return promtool_group(
        "low-traffic-outage",
        SCRAPE,
        series,
        [
            pages(t0 - MIN),
            pages(static_fires, page(STATIC, "1h")),
            pages(t0 + theory - SLACK, page(STATIC, "1h")),
            pages(t0 + theory + FOR_1H + SLACK, page(STATIC, "1h"), page(AWARE, "1h")),
            pages(t0 + 25 * MIN, page(STATIC, "1h"), page(AWARE, "1h")),
        ],
    )


# Steady traffic, then a surge: 10h at 1 000 req/min, then 20 000 req/min.
BASE_RPM, BASE_MIN = 1_000, 600
SURGE_RPM, SURGE_LEAD_MIN = 20_000, 60  # errors start after one hour of surge
SURGE_T0 = (BASE_MIN + SURGE_LEAD_MIN) * MIN
N_BEFORE_SURGE_ERRORS = BASE_RPM * BASE_MIN + SURGE_RPM * SURGE_LEAD_MIN  # 1 800 000
SURGE_BAD = 2  # failed requests a minute: a 0.01 % error ratio


def high_traffic_surge() -> dict:
    """2 of 20 000 requests a minute fail during a surge.

    Static never pages: 0.01 % is far under 14.4 × 0.001 and 6 × 0.001.
    Traffic-aware 1h page: 2·τ > 0.02 × 0.001 × (1 800 000 + 20 000·τ), so
    τ = 36 / (2 − 0.4) = 22.5 min; the 5m ratio (1e-4) is above the threshold
    ratio (≈ 2 250 000 / 1 200 000 × 0.00002 ≈ 3.75e-5). The 6h page needs
    2·τ > 0.05 × 0.001 × (1 800 000 + 20 000·τ): τ = 90 min, after the last check.
    """
    t0 = SURGE_T0
    n_budget = C_1H * BUDGET
    theory = n_budget * N_BEFORE_SURGE_ERRORS / (SURGE_BAD - n_budget * SURGE_RPM) * MIN
    assert theory == pytest.approx(22.5 * MIN)
    traffic_ratio = (N_BEFORE_SURGE_ERRORS + SURGE_RPM * theory / MIN) / (SURGE_RPM * 60)
    short_ratio = SURGE_BAD / SURGE_RPM
    assert short_ratio > traffic_ratio * n_budget
    six_h = C_6H * BUDGET * N_BEFORE_SURGE_ERRORS / (SURGE_BAD - C_6H * BUDGET * SURGE_RPM)
    assert six_h * MIN > 60 * MIN
    assert SURGE_BAD / SURGE_RPM < 6 * BUDGET  # under both static thresholds
    series = counters(
        [(BASE_RPM, 0, BASE_MIN), (SURGE_RPM, 0, SURGE_LEAD_MIN), (SURGE_RPM, SURGE_BAD, 60)]
    )
    return promtool_group(
        "high-traffic-surge",
        SCRAPE,
        series,
        [
            pages(t0 - MIN),
            pages(t0 + theory - SLACK),
            pages(t0 + theory + FOR_1H + SLACK, page(AWARE, "1h")),
            pages(t0 + 55 * MIN, page(AWARE, "1h")),
        ],
    )


SCENARIOS = {
    "low-traffic-handful": low_traffic_handful,
    "low-traffic-outage": low_traffic_outage,
    "high-traffic-surge": high_traffic_surge,
}


def run_promtool_test(tmp_path: Path, groups: list[dict]):
    return run_rule_tests(tmp_path, [STATIC, AWARE], groups, EVAL)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_traffic_aware_pages_when_the_formula_says(tmp_path, scenario):
    result = run_promtool_test(tmp_path, [SCENARIOS[scenario]()])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_traffic_aware_page_claimed_too_early_fails(tmp_path):
    """The harness can fail: claim the surge page at T0 + theory − slack."""
    group = high_traffic_surge()
    early = SURGE_T0 + 22.5 * MIN - SLACK
    group["alert_rule_test"].append(pages(early, page(AWARE, "1h")))
    result = run_promtool_test(tmp_path, [group])
    assert result.returncode == 1
    assert "FAILED" in result.stderr
