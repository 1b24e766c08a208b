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

from promtool_run import run_rule_tests
from rules_fixtures import mean_ratio

from tokenslo.core.durations import format_duration
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups, series_labels
from tokenslo.rules.promtool_tests import counter_values

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
