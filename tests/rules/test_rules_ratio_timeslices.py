"""A mean-ratio timeslices SLO (OpenSLO ``RatioTimeslices``) through the real
``promtool test rules``: its windows hold the mean of the slices' error ratios.

The SLO: 1m slices, the objective on the mean of their good-event ratios. Counters are
sampled every 15s from 0; minutes 0-4 have no requests, minutes 5-7 100 requests a
sample with 10 failing, minutes 8-9 1000 a sample, none failing.

By hand, at 10m: the slice judged at t holds the increments of the samples t-45s … t,
so a judgement at a whole minute holds the minute before it, one at a half minute two
increments of each of the minutes around it. The 5m window's judgements:

- 5m00s: minute 4, no requests: not judged (whether a range includes its first instant,
  Prometheus 2 or 3, does not matter);
- 5m30s … 8m00s (six): only minutes 5-7, error ratio 10/100 = 0.1 each;
- 8m30s: 2 × 10 failed of 2 × 100 + 2 × 1000 requests: 20 / 2200 = 1/110;
- 9m00s, 9m30s, 10m00s: only minutes 8-9: 0.

So the window's "errors" are 0.6 + 1/110, its "events" 10 judged slices, and its error
ratio the mean, 0.06 + 1/1100 ≈ 6.09 %. For contrast, the same window counted by events
has 120 failed of 9200 (1.3 %), and by good slices at 95 % seven bad of ten (70 %).
"""

from __future__ import annotations

import pytest
from promtool_run import run_rule_tests
from rules_fixtures import mean_ratio

from tokenslo.core import burnrate as br
from tokenslo.core.durations import format_duration
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups, series_labels
from tokenslo.rules.promtool_tests import (
    alert_check,
    burn_alert_expectation,
    counter_values,
    promtool_group,
)

SCRAPE, EVAL = 15.0, 30.0
GOOD = 'idp_token_requests_total{code="200"}'
BAD = 'idp_token_requests_total{code="500"}'
SLO = mean_ratio()
MEAN_ERRORS = 6 * 0.1 + 1 / 110  # the hand computation in the module docstring
MEAN = MEAN_ERRORS / 10


def series() -> dict[str, str]:
    """(increment a sample, samples) per counter: 4 samples a minute."""
    return {
        GOOD: counter_values([(0, 20), (90, 12), (1000, 8)]),
        BAD: counter_values([(0, 20), (10, 12), (0, 8)]),
    }


def close_to(expr: str, value: float) -> dict:
    """``expr`` at 10m within 1e-9 of ``value`` (sums of floats are not exact)."""
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(series_labels(SLO).items()))
    return {
        "expr": f"abs({expr}{{slo={SLO.name!r}}} - {value!r}) < bool 1e-9",
        "eval_time": "10m",
        "exp_samples": [{"labels": f"{{{labels}}}", "value": 1}],
    }


def test_rules_record_the_slice_error_ratio_and_average_it_per_window(tmp_path):
    rules = [r for g in generate_rule_groups([SLO]) for r in g["rules"] if "record" in r]
    judged = c.SLICE_ERROR_RATIO_RECORD.format(window="1m")
    assert judged in {r["record"] for r in rules}
    assert c.slice_bad_record("1m") not in {r["record"] for r in rules}
    group = {
        "name": "mean-ratio",
        "interval": format_duration(SCRAPE),
        "input_series": [{"series": k, "values": v} for k, v in series().items()],
        "promql_expr_test": [
            close_to(c.errors_record("5m"), MEAN_ERRORS),
            close_to(c.events_record("5m"), 10),
            close_to(c.error_ratio_record("5m"), MEAN),
        ],
    }
    result = run_rule_tests(tmp_path, [SLO], [group], EVAL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_mean_makes_promtool_fail(tmp_path):
    """The proof can fail: the events' ratio over the same window is not the mean."""
    group = {
        "name": "mean-ratio-wrong",
        "interval": format_duration(SCRAPE),
        "input_series": [{"series": k, "values": v} for k, v in series().items()],
        "promql_expr_test": [close_to(c.error_ratio_record("5m"), 120 / 9200)],
    }
    result = run_rule_tests(tmp_path, [SLO], [group], EVAL)
    assert result.returncode == 1 and "FAILED" in result.stderr


T0 = 7 * 3600.0  # healthy until then, a full outage after


@pytest.mark.slow
def test_full_outage_pages_when_the_mean_slice_error_ratio_crosses(tmp_path):
    """100 requests a sample, all failing after T0 (a multiple of 30s). The slice judged
    at T0+30s holds two healthy and two failing increments: 0.5; every later one 1.
    The 1h window holds 121 judgements (Prometheus 3: 120) and needs a sum above
    0.0144 × 121 = 1.74: 0.5 + 1 + 1 at T0+90s; the 5m window needs 0.16, held from
    T0+30s. So the 1h/5m page fires at T0+90s. The 6h window (721 judgements) needs
    0.006 × 721 = 4.33: 0.5 + 4 at T0+150s; its 30m window holds from T0+30s."""
    groups = generate_rule_groups([SLO])
    policy = {(w.severity, w.long_window): w for w in br.policy_for(SLO)}

    def burn(long_window: float) -> dict:
        window = policy[("page", long_window)]
        return burn_alert_expectation(
            SLO,
            groups,
            long_window=format_duration(window.long_window),
            short_window=format_duration(window.short_window),
        )

    healthy, failing = round(T0 / SCRAPE), round(600 / SCRAPE)
    series = {
        GOOD: counter_values([(100, healthy), (0, failing)]),
        BAD: counter_values([(0, healthy), (100, failing)]),
    }
    checks = [
        alert_check(T0 + 60, c.BURN_ALERT, []),
        alert_check(T0 + 90, c.BURN_ALERT, [burn(3600.0)]),
        alert_check(T0 + 120, c.BURN_ALERT, [burn(3600.0)]),
        alert_check(T0 + 150, c.BURN_ALERT, [burn(3600.0), burn(6 * 3600.0)]),
    ]
    group = promtool_group("mean-ratio-outage", SCRAPE, series, checks)
    result = run_rule_tests(tmp_path, [SLO], [group], EVAL)
    assert result.returncode == 0, result.stdout + result.stderr
