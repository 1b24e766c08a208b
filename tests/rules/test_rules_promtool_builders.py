"""The pure builders behind the promtool timing tests."""

from __future__ import annotations

import pytest
from rules_fixtures import events_bad

from tokenslo.rules import conventions as c
from tokenslo.rules.generate import generate_rule_groups
from tokenslo.rules.promtool_tests import (
    alert_check,
    burn_alert_expectation,
    counter_values,
    find_alert,
    no_data_expectation,
)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([(100, 3), (0, 2)], "0 100+100x2 300+0x1"),
        ([(0, 2), (2.5, 1)], "0 0+0x1 2.5+2.5x0"),
        ([(5, 0), (1, 1)], "0 1+1x0"),
    ],
)
def test_counter_values(segments, expected):
    assert counter_values(segments) == expected


def test_burn_expectation_merges_series_labels_under_rule_labels():
    slo = events_bad()
    groups = generate_rule_groups([slo])
    exp = burn_alert_expectation(slo, groups, long_window="3d")
    assert exp["exp_labels"]["team"] == "identity"  # from the recorded series
    assert exp["exp_labels"]["severity"] == "ticket"  # from the rule
    assert exp["exp_annotations"]["runbook_url"].startswith("https://")
    assert "team" not in no_data_expectation(slo, groups)["exp_labels"]  # absent() drops it


def test_find_alert_refuses_ambiguity():
    groups = generate_rule_groups([events_bad()])
    with pytest.raises(LookupError):
        find_alert(groups, c.BURN_ALERT, severity="page")


def test_alert_check_formats_eval_time():
    assert alert_check(6 * 3600 + 51.84, "X", []) == {
        "eval_time": "6h51s840ms", "alertname": "X", "exp_alerts": [],
    }
