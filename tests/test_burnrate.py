"""The burn-rate math is the oracle of every timing test, so it is pinned here
against the SRE Workbook's published numbers and against first principles."""

from __future__ import annotations

import math

import pytest

from tokenslo.core import burnrate as br
from tokenslo.core.model import SLO, Alerting, BurnWindow, EventsSLI

DAY = 86400.0
HOUR = 3600.0


@pytest.mark.parametrize(
    ("period_days", "expected"),
    [(30, [14.4, 6.0, 3.0, 1.0]), (28, [13.44, 5.6, 2.8, 0.9333333])],
)
def test_default_policy_factors_match_the_workbook(period_days, expected):
    period = period_days * DAY
    factors = [
        br.burn_factor(w.budget_fraction, period, w.long_window) for w in br.default_policy(period)
    ]
    assert factors == pytest.approx(expected, rel=1e-6)


def test_default_policy_windows_and_severities():
    policy = br.default_policy(30 * DAY)
    assert [(w.severity, w.long_window, w.short_window) for w in policy] == [
        ("page", HOUR, 5 * 60),
        ("page", 6 * HOUR, 30 * 60),
        ("ticket", DAY, 2 * HOUR),
        ("ticket", 3 * DAY, 6 * HOUR),
    ]
    # a page fires on its first evaluation over the threshold; a ticket after short / 5
    assert [w.for_ for w in policy] == [0, 0, 1440, 4320]


def _slo(**alerting) -> SLO:
    return SLO(
        name="x",
        service="s",
        objective=99.9,
        window=30 * DAY,
        sli=EventsSLI(total="t", bad="b"),
        alerting=Alerting(**alerting),
    )


def test_policy_for_filters_disabled_severities_and_honours_overrides():
    assert {w.severity for w in br.policy_for(_slo(ticket=False))} == {"page"}
    custom = (BurnWindow("page", 0.5, 600, 60),)
    assert br.policy_for(_slo(policy=custom)) == custom
    assert br.threshold_of(_slo(), custom[0]) == pytest.approx(0.5 * 30 * DAY / 600 * 0.001)


def test_detection_time_for_a_full_outage_is_51_84_seconds():
    assert br.detection_time(14.4, 99.9, HOUR, 1.0) == pytest.approx(51.84)
    assert br.detection_time(14.4, 99.9, HOUR, 0.02) == pytest.approx(43.2 * 60)


def test_detection_time_is_none_at_or_below_threshold():
    assert br.detection_time(14.4, 99.9, HOUR, 0.0144) is None
    assert br.detection_time(14.4, 99.9, HOUR, 0.001) is None
    assert br.detection_time(1.0, 99.9, 3 * DAY, 0.002) == pytest.approx(36 * HOUR)


def test_detection_time_agrees_with_a_simulated_window():
    """Integrate a step error rate over a sliding window and find the crossing."""
    factor, objective, window, rate = 6.0, 99.9, 6 * HOUR, 0.05
    threshold = factor * 0.001
    t = next(s for s in range(1, int(window)) if rate * s / window > threshold)
    assert br.detection_time(factor, objective, window, rate) == pytest.approx(t, abs=1.5)


def test_reset_time_after_long_outage_is_window_minus_kept_errors():
    # 100% outage longer than the 5m window: the 5m ratio drops under 1.44% after
    # 5m − 0.0144 × 5m = 295.68 s.
    assert br.reset_time(14.4, 99.9, 300, 1.0, 3600) == pytest.approx(300 - 0.0144 * 300)
    # An incident too small to ever cross resets immediately.
    assert br.reset_time(14.4, 99.9, 3600, 1.0, 10) == 0.0
    pair = br.pair_reset_time(14.4, 99.9, HOUR, 300, 1.0, 3600)
    assert pair == pytest.approx(295.68)


def test_sli_budget_burn_and_exhaustion():
    assert br.sli(999, 1000) == pytest.approx(0.999)
    assert br.sli(0, 0) is None
    assert br.error_ratio(5, 0) is None
    assert br.burn_rate(0.002, 99.9) == pytest.approx(2.0)
    assert br.error_budget_remaining(0.00025, 99.9) == pytest.approx(0.75)
    assert br.error_budget_remaining(0.003, 99.9) == pytest.approx(-2.0)
    # 75% of a 30d budget left, burning at 2x → 11.25 days.
    assert br.time_to_exhaustion(0.75, 2.0, 30 * DAY) == pytest.approx(11.25 * DAY)
    assert br.time_to_exhaustion(0.75, 0.0, 30 * DAY) is None
    assert br.time_to_exhaustion(-0.1, 2.0, 30 * DAY) == 0.0
    assert br.is_finite(1.0) and not br.is_finite(math.inf) and not br.is_finite(None)


def test_budget_consumed_by_an_outage():
    # 15 minutes of a full outage of a 99.9% SLO: burn rate 1000 → 900 s × 1000 / 30d.
    assert br.budget_consumed(1000.0, 900, 30 * DAY) == pytest.approx(0.3472, abs=1e-4)
    # Burning exactly on budget for the whole period uses exactly all of it.
    assert br.budget_consumed(1.0, 30 * DAY, 30 * DAY) == pytest.approx(1.0)
