"""Chaos theory for traffic-aware SLOs (pure): the condition holds when the long window
holds more than c × (1 − objective) × N_period errors and the short window's ratio is
above (N_period / N_long) × c × (1 − objective), both counts moving as traffic flows.
Every expected time is solved by hand from that inequality in the test."""

from __future__ import annotations

import dataclasses
import math

import pytest

from tokenslo.chaos import theory
from tokenslo.core.model import SLO, Alerting, BurnWindow, EventsSLI

HOUR = 3600.0
SCALE = 60.0  # 1h → 60 s, 5m → 5 s, 6h → 360 s


def aware(objective: float = 99.9, policy=None) -> SLO:
    return SLO(
        name="x",
        service="s",
        objective=objective,
        window=30 * 86400.0,
        sli=EventsSLI(total="sum(increase(t[{{window}}]))", bad="sum(increase(b[{{window}}]))"),
        alerting=Alerting(policy=policy, burn_rate="traffic-aware"),
    )


def steady(seconds: float, rate: float) -> theory.Held:
    return theory.Held(seconds=seconds, events=rate * seconds, errors=0.0)


def smaller_root(a: float, b: float, c: float) -> float:
    return (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a)


def test_a_young_lab_pages_at_an_error_rate_the_static_threshold_never_reaches():
    # 99.9 %, 1h/5m page (c = 2 %): share = 0.02 x 0.001 = 2e-5. At scale 60 the 6h
    # window (360 s) is full of 20/s; the lab is 450 s old, so the 30d period (12 h
    # scaled) holds 9000 events and loses none. 1 % of the traffic fails from the
    # injection on, 20/s.
    #   long (60 s): 0.2 s errors > 2e-5 (9000 + 20 s)  ->  s = 0.18 / 0.1996
    #   short (5 s): 0.2 s x 1200 > 2e-5 (9000 + 20 s) x 100  ->  s = 18 / 239.96
    # The condition holds once both do: 0.9018 s (a page has no for).
    profile = [steady(360.0, 20.0)]
    period = theory.PeriodHeld(events=9000.0)
    expected = theory.first_to_fire_held(
        aware(), "page", 0.01, SCALE, profile, long_window="1h", period=period
    )
    assert expected is not None
    assert expected.theory_seconds == pytest.approx(0.18 / 0.1996)
    long = theory.window_of(profile, 60.0)
    short = theory.window_of(profile, 5.0)
    assert theory.held_crossing_traffic_aware(
        2e-5, short, long, period, 20.0, 0.01
    ) == pytest.approx(18 / 239.96)
    # the static threshold (14.4 x 0.1 % = 1.44 %) is never exceeded by 1 % errors
    static = dataclasses.replace(aware(), alerting=Alerting())
    assert theory.first_to_fire_held(static, "page", 0.01, SCALE, profile, "1h") is None
    assert theory.first_to_fire(static, "page", 0.01, SCALE, "1h") is None


def test_the_short_window_shares_the_long_windows_moving_count_quadratically():
    # 99 %, a page burning c = 10 % in 1h/5m: share = 0.1 x 0.01 = 1e-3. The 60 s long
    # window held 100/s for its first 55 s and 10/s in its last 5 s (the short window);
    # the period holds 100 000 events. After the injection 10/s, all failing. For s <= 5:
    #   short: errors 10 s, events 50 (10/s in, 10/s out)
    #   N_long = 5500 - 100 s + 50 + 10 s = 5550 - 90 s (the burst leaves at 100/s)
    #   N_period = 100 000 + 10 s
    #   10 s (5550 - 90 s) > 1e-3 (100 000 + 10 s) 50
    #   <=>  900 s^2 - 55 499.5 s + 5000 < 0: the smaller root.
    profile = [theory.Held(55.0, 5500.0, 0.0), steady(5.0, 10.0)]
    period = theory.PeriodHeld(events=100_000.0)
    short = theory.window_of(profile, 5.0)
    crossing = theory.held_crossing_traffic_aware(1e-3, short, profile, period, 10.0, 1.0)
    assert crossing == pytest.approx(smaller_root(900.0, -55_499.5, 5000.0))
    # the long window: 10 s > 1e-3 (100 000 + 10 s) -> s = 100 / 9.99
    long = theory.held_crossing_traffic_aware(1e-3, profile, profile, period, 10.0, 1.0)
    assert long == pytest.approx(100 / 9.99)
    policy = (BurnWindow("page", 0.1, HOUR, 300.0, for_=0.0),)
    expected = theory.first_to_fire_held(aware(99.0, policy), "page", 1.0, SCALE, profile,
                                         period=period)  # fmt: skip
    assert expected is not None and expected.theory_seconds == pytest.approx(100 / 9.99)


def test_traffic_leaving_a_full_period_lowers_the_threshold():
    # share 1e-3; the long window held 10/s, 10/s after the injection, all failing. The
    # period holds 100 000 events, its oldest 60 s 60 000 of them (1000/s) leave first:
    #   10 s > 1e-3 (100 000 + 10 s - 1000 s)  ->  s = 100 / 10.99
    # A lab younger than its period loses nothing: s = 100 / 9.99.
    held = [steady(60.0, 10.0)]
    full = theory.PeriodHeld(100_000.0, leaving=[theory.Held(60.0, 60_000.0, 0.0)])
    young = theory.PeriodHeld(100_000.0)
    assert theory.held_crossing_traffic_aware(1e-3, held, held, full, 10.0, 1.0) == pytest.approx(
        100 / 10.99
    )
    assert theory.held_crossing_traffic_aware(1e-3, held, held, young, 10.0, 1.0) == pytest.approx(
        100 / 9.99
    )


def test_no_traffic_never_crosses_and_errors_already_held_cross_at_once():
    period = theory.PeriodHeld(1000.0)
    empty = [theory.Held(60.0, 0.0, 0.0)]
    assert theory.held_crossing_traffic_aware(1e-3, empty, empty, period, 0.0, 1.0) is None
    # 600 events, 6 errors held: 6 > 1e-3 x 1000 at once
    burning = [theory.Held(60.0, 600.0, 6.0)]
    assert theory.held_crossing_traffic_aware(1e-3, burning, burning, period, 10.0, 0.0) == 0.0
    # no errors at all: never
    calm = [steady(60.0, 10.0)]
    assert theory.held_crossing_traffic_aware(1e-3, calm, calm, period, 10.0, 0.0) is None


def test_the_held_theory_of_a_traffic_aware_slo_needs_its_period():
    with pytest.raises(ValueError, match="period"):
        theory.first_to_fire_held(aware(), "page", 1.0, SCALE, [steady(360.0, 20.0)])


def test_the_observed_threshold_moves_with_the_measured_period_and_long_window():
    # 99.9 %, 1h/5m page: share 2e-5. At t = 1 the period held 60 000 events and the long
    # window 1200: threshold 2e-5 x 50 = 0.1 %; 1 / 1200 is under it, 3 / 1200 (t = 2) over
    # it, and the short window is over it at both. At t = 2 the period grew to 300 000
    # (threshold 0.5 %) in a second variant: not over it. The static 1.44 % never.
    model = aware()
    window = theory.conditions(model, "page", "1h")[0]
    long = {1.0: (1200.0, 1.0), 2.0: (1200.0, 3.0)}
    short = {1.0: (100.0, 1.0), 2.0: (100.0, 3.0)}
    period = {1.0: (60_000.0, 1.0), 2.0: (60_000.0, 3.0)}
    expected = theory.observed_expectation(model, window, SCALE, long, short, period)
    assert expected.theory_seconds == pytest.approx(2.0)
    grown = {**period, 2.0: (300_000.0, 3.0)}
    assert (
        theory.observed_expectation(model, window, SCALE, long, short, grown).theory_seconds is None
    )
    static = dataclasses.replace(model, alerting=Alerting())
    assert theory.observed_expectation(static, window, SCALE, long, short).theory_seconds is None
    # a time without a period count has no threshold to cross
    assert theory.observed_expectation(model, window, SCALE, long, short, {}).theory_seconds is None


def test_the_observed_reset_is_the_first_time_the_condition_no_longer_holds():
    # threshold 2e-5 x 60 000 / 1200 = 0.1 % as above; the short window drops to 0 errors
    # at t = 3 while the long one still holds 3
    model = aware()
    window = theory.conditions(model, "page", "1h")[0]
    long = {1.0: (1200.0, 3.0), 2.0: (1200.0, 3.0), 3.0: (1200.0, 3.0)}
    short = {1.0: (100.0, 3.0), 2.0: (100.0, 1.0), 3.0: (100.0, 0.0)}
    period = {t: (60_000.0, 3.0) for t in long}
    assert theory.observed_reset(model, window, long, short, period) == 3.0
    assert theory.observed_reset(model, window, long, long, period) is None
