"""tokenslo.core.timescale: the one definition of compressed time every component uses."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tokenslo.core import timescale as ts
from tokenslo.core.burnrate import HOUR, policy_for
from tokenslo.core.model import SLO, TRAFFIC_AWARE, EventsSLI
from tokenslo.errors import InputError


def _slo() -> SLO:
    sli = EventsSLI(total="rate(x_total[{{window}}])", bad="rate(x_err[{{window}}])")
    return SLO(name="s", service="svc", objective=99.9, window=30 * 24 * HOUR, sli=sli)


def test_scaled_and_nominal_are_inverse_and_spelled_as_durations():
    assert ts.scaled(HOUR, 60) == 60.0
    assert ts.nominal(60.0, 60) == HOUR
    assert ts.scaled_duration(HOUR, 60) == "1m"
    assert ts.nominal_duration(60.0, 60) == "1h"
    assert ts.scaled_duration(300, 600) == "500ms"  # sub-second windows stay exact


def test_scale_between_reads_a_scale_back_from_loaded_durations():
    assert ts.scale_between(HOUR, 60.0) == 60.0
    assert ts.scale_between(720.0, 720.0 / 7) == 7.0  # float noise rounded away


@pytest.mark.parametrize("bad", [0, -1, math.inf, math.nan, True, "2"])
def test_check_time_scale_refuses_what_is_not_a_positive_number(bad):
    with pytest.raises(InputError) as err:
        ts.check_time_scale(bad)
    assert str(err.value) == f"--time-scale: must be a positive number, got {bad!r}"


def test_check_time_scale_quotes_what_the_user_typed():
    with pytest.raises(InputError, match=r"got 'fast'"):
        ts.check_time_scale(math.nan, given="fast")
    assert ts.check_time_scale(60) == 60.0
    assert isinstance(ts.check_time_scale(60), float)


def test_scale_slo_divides_every_window_and_keeps_burn_factors():
    slo = _slo()
    assert ts.scale_slo(slo, 1) is slo
    fast = ts.scale_slo(slo, 60)
    assert fast.window == slo.window / 60
    pairs = zip(policy_for(slo), policy_for(fast), strict=True)
    for before, after in pairs:
        assert after.long_window == before.long_window / 60
        assert after.short_window == before.short_window / 60
        assert after.for_ == before.for_ / 60
        assert after.budget_fraction == before.budget_fraction


def test_scale_slo_keeps_the_rest_of_alerting():
    """A rehearsal of a traffic-aware SLO stays traffic-aware (and keeps its labels)."""
    slo = _slo()
    slo = replace(
        slo, alerting=replace(slo.alerting, burn_rate=TRAFFIC_AWARE, labels={"team": "x"})
    )
    fast = ts.scale_slo(slo, 60).alerting
    assert (fast.burn_rate, fast.labels, fast.page) == (TRAFFIC_AWARE, {"team": "x"}, True)


def test_scale_keeps_rule_intervals_above_the_floor():
    assert ts.Scale(1).interval(30.0, 1.0) == "30s"
    assert ts.Scale(60).interval(30.0, 1.0) == "1s"  # 0.5 s would be faster than scrapes
    assert ts.Scale(60).duration(HOUR) == "1m"
