"""A latency threshold that is not a bucket boundary never pages (issue 11 item 7).

The real ``promtool test rules`` runs the generated rules over a healthy histogram
(every request faster than 0.1 s) whose buckets are 0.1, 0.5 and +Inf. With the SLO's
threshold at 0.25 there is no ``le="0.25"`` series: the errors record must be absent
(not "all requests slow"), no burn alert may fire, and ``SLONoData`` must fire instead.
The same traffic with a 0.25 bucket is the control: nothing fires.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rules_fixtures import latency

from tokenslo.core import burnrate as br
from tokenslo.core.durations import format_duration, parse_duration
from tokenslo.prometheus.process import run_promtool
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups, render_rules
from tokenslo.rules.promtool_tests import (
    alert_check,
    counter_values,
    find_alert,
    no_data_expectation,
    promtool_file,
    promtool_group,
)

pytestmark = pytest.mark.prometheus

SLO = latency()  # threshold 0.25 s, selector grant_type="client_credentials"
GROUPS = generate_rule_groups([SLO])
EVAL = parse_duration(GROUPS[0]["interval"])
SCRAPE = 60.0
HOURS = 2
PER_SCRAPE = 1000
METRIC = "idp_token_request_duration_seconds"
LABELS = 'grant_type="client_credentials"'


def healthy_histogram(bounds: tuple[str, ...]) -> dict[str, str]:
    """Every request below the smallest bound: each bucket and the count grow alike."""
    values = counter_values([(PER_SCRAPE, round(HOURS * br.HOUR / SCRAPE))])
    series = {f'{METRIC}_bucket{{{LABELS}, le="{le}"}}': values for le in (*bounds, "+Inf")}
    series[f"{METRIC}_count{{{LABELS}}}"] = values
    return series


def run(tmp_path: Path, bounds: tuple[str, ...], no_data_fires: bool):
    no_data_for = parse_duration(find_alert(GROUPS, c.NO_DATA_ALERT)["for"])
    times = [30 * 60.0, br.HOUR, HOURS * br.HOUR - SCRAPE]
    assert min(times) > no_data_for + 2 * EVAL
    expected = [no_data_expectation(SLO, GROUPS)] if no_data_fires else []
    checks = [alert_check(t, c.BURN_ALERT, []) for t in times]
    checks += [alert_check(t, c.NO_DATA_ALERT, expected) for t in times]
    group = promtool_group("latency-buckets", SCRAPE, healthy_histogram(bounds), checks)
    (tmp_path / "rules.yml").write_text(render_rules([SLO]))
    doc = promtool_file(["rules.yml"], format_duration(EVAL), [group])
    (tmp_path / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000))
    return run_promtool("test", "rules", "test.yml", cwd=tmp_path, timeout=300)


def test_threshold_without_a_bucket_fires_no_data_never_a_page(tmp_path):
    result = run(tmp_path, ("0.1", "0.5"), no_data_fires=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_threshold_on_a_bucket_fires_nothing(tmp_path):
    result = run(tmp_path, ("0.1", "0.25", "0.5"), no_data_fires=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_harness_can_fail(tmp_path):
    """Claiming no SLONoData for the missing bucket must make promtool fail."""
    result = run(tmp_path, ("0.1", "0.5"), no_data_fires=False)
    assert result.returncode == 1 and c.NO_DATA_ALERT in result.stderr
