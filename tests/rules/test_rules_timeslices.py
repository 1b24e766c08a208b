"""Alert timing of a timeslices SLO's rules, proven by the real ``promtool test rules``.

The SLO: 99.9 % of 1-minute slices good over 30d, a slice good when at least 95 % of
its requests succeed. Counters are sampled every 15s (100 requests a sample), so a
1m slice holds four samples. The rules judge the last slice at every 30s evaluation
(``tokenslo:slo_slice_bad:1m``); a window's bad-slice share is its bad judgements
over its judgements.

Hand computation for a full outage starting at T0 (a multiple of 30s, 7h of healthy
traffic before, so the 1h and 6h windows hold only healthy judgements):

- samples are taken at k * 15s; the last healthy increment lands at T0 and the first
  failing one at T0+15s. The slice judged at T0 saw no failure; the one judged at
  T0+30s holds the samples T0-15s … T0+30s: one good increment and two failing ones,
  an error ratio of 2/3 > 5 %. So the first bad judgement is at T0+30s, and every
  judgement after it is bad too.
- a window of w seconds holds w / 30 judgements (Prometheus 2 ranges include the
  sample exactly w old: one more; either count gives the same result below), so a
  pair with threshold x holds once its long window has floor(x * w / 30) + 1 bad
  judgements (the short windows need only one).
- 1h/5m page: x = 14.4 * 0.1 % = 0.0144; 0.0144 * 120 = 1.73 → 2 bad judgements →
  holds at T0+1m and fires then (a page has no ``for``).
- 6h/30m page: x = 6 * 0.1 % = 0.006; 0.006 * 720 = 4.32 → 5 → holds and fires at
  T0+2m30s.
The tickets' ``for`` (24m, 72m) keeps them quiet over the checked minutes.
"""

from __future__ import annotations

import math

import pytest
from promtool_run import run_rule_tests
from rules_fixtures import timeslices

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

MIN = 60.0
HOUR = 3600.0
SCRAPE = 15.0
EVAL = 30.0
PER_SCRAPE = 100
GOOD = 'idp_token_requests_total{code="200"}'
BAD = 'idp_token_requests_total{code="500"}'
T0 = 7 * HOUR
FIRST_BAD = T0 + 2 * SCRAPE  # see the module docstring

SLO = timeslices(slice_seconds=MIN, slice_target=95.0)
GROUPS = generate_rule_groups([SLO])
POLICY = {(w.severity, w.long_window): w for w in br.policy_for(SLO)}
PAGE_1H = POLICY[("page", HOUR)]
PAGE_6H = POLICY[("page", 6 * HOUR)]

pytestmark = pytest.mark.prometheus


def fires_at(window, first_bad: float) -> float:
    """When the pair fires, from the hand computation in the module docstring."""
    threshold = br.threshold_of(SLO, window)
    needed = math.floor(threshold * window.long_window / EVAL) + 1
    return first_bad + (needed - 1) * EVAL + window.for_


def outage_series(minutes: int) -> dict[str, str]:
    healthy, failing = round(T0 / SCRAPE), round(minutes * MIN / SCRAPE)
    return {
        GOOD: counter_values([(PER_SCRAPE, healthy), (0, failing)]),
        BAD: counter_values([(0, healthy), (PER_SCRAPE, failing)]),
    }


def burn(window) -> dict:
    return burn_alert_expectation(
        SLO,
        GROUPS,
        long_window=format_duration(window.long_window),
        short_window=format_duration(window.short_window),
    )


def burn_check(at: float, *firing: dict) -> dict:
    return alert_check(at, c.BURN_ALERT, list(firing))


def test_hand_computed_times_match_the_policy():
    """The docstring's figures: the default policy's thresholds (and no page ``for``) give
    1m and 2m30s."""
    assert fires_at(PAGE_1H, FIRST_BAD) - T0 == 1 * MIN
    assert fires_at(PAGE_6H, FIRST_BAD) - T0 == 2.5 * MIN


@pytest.mark.slow
def test_full_outage_pages_when_the_bad_slice_share_crosses(tmp_path):
    page_1h, page_6h = fires_at(PAGE_1H, FIRST_BAD), fires_at(PAGE_6H, FIRST_BAD)
    group = promtool_group(
        "timeslices-full-outage",
        SCRAPE,
        outage_series(10),
        [
            burn_check(T0),
            burn_check(page_1h - EVAL),  # pending, not firing
            burn_check(page_1h, burn(PAGE_1H)),
            burn_check(page_6h - EVAL, burn(PAGE_1H)),
            burn_check(page_6h, burn(PAGE_1H), burn(PAGE_6H)),
        ],
    )
    result = run_rule_tests(tmp_path, [SLO], [group], EVAL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_judgement_early_makes_promtool_fail(tmp_path):
    """The proof can fail: claim the 1h page one evaluation before the hand computation."""
    early = fires_at(PAGE_1H, FIRST_BAD) - EVAL
    group = promtool_group(
        "timeslices-too-early", SCRAPE, outage_series(3), [burn_check(early, burn(PAGE_1H))]
    )
    result = run_rule_tests(tmp_path, [SLO], [group], EVAL)
    assert result.returncode == 1
    assert "FAILED" in result.stderr


def test_rules_count_the_slices_slo_status_counts(tmp_path):
    """The history of tests/engine/test_engine_timeslices.py, fed to the rules: 80 minutes
    of 15s samples from 0, minutes 30 and 40 failing, 15-24 and 60-69 without traffic.
    At 80m its hand count holds for the recorded 1h window too: 6 bad of 91 judged
    slices, the numbers ``slo status`` gives on the same history."""
    failing, quiet = {30, 40}, set(range(15, 25)) | set(range(60, 70))

    def minutes(per_minute) -> str:
        return counter_values([(per_minute(m), 4) for m in range(80)])

    series = {
        GOOD: minutes(lambda m: 0 if m in failing | quiet else PER_SCRAPE),
        BAD: minutes(lambda m: PER_SCRAPE if m in failing else 0),
    }
    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(series_labels(SLO).items()))

    def sample(record: str, value: int) -> dict:
        return {
            "expr": f'{record}{{slo="{SLO.name}"}}',
            "eval_time": "80m",
            "exp_samples": [{"labels": f'{{__name__="{record}", {labels}}}', "value": value}],
        }

    group = {
        "name": "timeslices-counts",
        "interval": format_duration(SCRAPE),
        "input_series": [{"series": k, "values": v} for k, v in series.items()],
        "promql_expr_test": [
            sample(c.errors_record("1h"), 6),
            sample(c.events_record("1h"), 91),
        ],
    }
    result = run_rule_tests(tmp_path, [SLO], [group], EVAL)
    assert result.returncode == 0, result.stdout + result.stderr
