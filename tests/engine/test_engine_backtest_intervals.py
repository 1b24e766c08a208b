"""Backtest interval extraction from synthetic range data (no Prometheus)."""

from __future__ import annotations

import math

import pytest
from engine_slos import events_slo, policy

from tokenslo.core import burnrate
from tokenslo.core.model import Timeslices
from tokenslo.core.windows import window_sums
from tokenslo.engine import backtest as bt
from tokenslo.engine import evaluator as ev
from tokenslo.errors import InputError


def test_firing_intervals_without_for():
    times = [0, 1, 2, 3, 4, 5, 6]
    holds = [False, True, True, False, False, True, True]
    assert bt.firing_intervals(times, holds, 0) == [(1, 3), (5, None)]


def test_for_delays_firing_and_short_blips_never_fire():
    times = list(range(10))
    holds = [False, True, True, True, True, False, True, True, False, False]
    # pending at 1, fires once 3 - 1 >= 2; the 6..7 run lasts only 1 s
    assert bt.firing_intervals(times, holds, 2) == [(3, 5)]
    assert bt.firing_intervals(times, holds, 4) == []


def test_condition_needs_both_windows_above_threshold_with_traffic():
    hot = ev.WindowCounts(errors=5, total=100)
    cold = ev.WindowCounts(errors=1, total=100)
    assert bt.condition_holds(0.02, hot, hot)
    assert not bt.condition_holds(0.02, hot, cold)
    assert not bt.condition_holds(0.05, hot, hot)  # equal is not above
    assert not bt.condition_holds(0.02, hot, None)
    assert not bt.condition_holds(0.02, hot, ev.WindowCounts(errors=0, total=0))


def test_step_grid_and_lead():
    assert bt.step_grid(100, 110, 5) == [100, 105, 110]
    assert bt.step_grid(100, 111, 5) == [100, 105, 110]
    slo = events_slo("a", window=3600, alerting=policy(("ticket", 0.5, 600, 60, 20)))
    assert bt.lead_time([slo], 7) == 21
    no_for = events_slo("b", window=3600, alerting=policy(("page", 1, 60, 5, 0)))
    assert bt.lead_time([no_for], 7) == 0


def test_too_many_points_names_the_step():
    with pytest.raises(InputError) as info:
        bt.step_grid(0, 86400, 1)
    assert info.value.field == "step" and "at least 8s" in str(info.value)


def _incident_counts(slo, error_rate: float, switch: float, times, rate: float = 10.0):
    """Exact window counts for constant traffic whose error ratio jumps at ``switch``."""
    counts: bt.RangeCounts = {slo.name: {}}
    for window in ev.alert_windows(slo):
        steps = counts[slo.name].setdefault(window, {})
        for t in times:
            bad_seconds = min(window, max(0.0, t - switch))
            steps[round(t * 1000)] = ev.WindowCounts(
                errors=rate * error_rate * bad_seconds, total=rate * window
            )
    return counts


def test_intervals_start_when_the_math_says():
    # 99% over 1h; page: 10% budget in 120s (factor 3, threshold 0.03), short 30s, no for;
    # ticket: 20% in 600s (factor 1.2, threshold 0.012), short 60s, for 30s.
    slo = events_slo(
        "idp",
        objective=99.0,
        window=3600,
        alerting=policy(("page", 0.1, 120, 30, 0), ("ticket", 0.2, 600, 60, 30)),
    )
    start, end, step, switch, error_rate = 1000.0, 2000.0, 5.0, 1500.0, 0.3
    times = bt.step_grid(start - bt.lead_time([slo], step), end, step)
    result = bt.compute_backtest(
        [slo], _incident_counts(slo, error_rate, switch, times), start, end, step
    )
    assert result.no_data == []
    page, ticket = sorted(result.intervals["idp"], key=lambda i: i.severity)
    for interval, bw in ((page, slo.alerting.policy[0]), (ticket, slo.alerting.policy[1])):
        factor = burnrate.factor_of(slo, bw)
        detect = burnrate.detection_time(factor, slo.objective, bw.long_window, error_rate)
        expected = switch + math.floor(detect / step + 1e-9) * step + step  # next step above
        expected += math.ceil(bw.for_ / step) * step
        assert interval.start == pytest.approx(expected)
        assert interval.end is None
        assert (interval.long_window, interval.short_window) == (bw.long_window, bw.short_window)


def test_interval_ends_when_the_incident_clears():
    slo = events_slo("a", objective=99.0, window=3600, alerting=policy(("page", 0.1, 120, 30, 0)))
    times = bt.step_grid(0, 600, 10)
    counts = _incident_counts(slo, 0.5, 100, times)
    for window, steps in counts["a"].items():  # errors stop at t=300: reset after windows drain
        for ms in steps:
            t = ms / 1000
            bad = max(0.0, min(t, 300) - max(100, t - window))
            steps[ms] = ev.WindowCounts(errors=10 * 0.5 * bad, total=10 * window)
    [interval] = bt.compute_backtest([slo], counts, 0, 600, 10).intervals["a"]
    threshold = burnrate.threshold_of(slo, slo.alerting.policy[0])
    assert interval.start == pytest.approx(110)
    # the short window (30s) drops under 0.03 once ≤ 1.8 s of errors remain: t > 328.2
    reset = burnrate.pair_reset_time(
        burnrate.factor_of(slo, slo.alerting.policy[0]), 99.0, 120, 30, 0.5, 200
    )
    assert reset == pytest.approx(30 - threshold * 30 / 0.5)
    assert interval.end == pytest.approx(300 + math.ceil(reset / 10) * 10)


def test_missing_window_is_reported_as_no_data():
    slo = events_slo("a", window=3600, alerting=policy(("page", 0.1, 120, 30, 0)))
    times = bt.step_grid(0, 100, 10)
    counts = _incident_counts(slo, 0.0, 0, times)
    del counts["a"][30]
    result = bt.compute_backtest([slo, events_slo("b")], counts, 0, 100, 10)
    assert result.no_data == ["a", "b"]
    assert result.intervals == {"a": [], "b": []}


def test_parse_matrix_keys_by_millisecond():
    result = [
        {
            "metric": {ev.SLO_LABEL: "a", ev.KIND_LABEL: "total"},
            "values": [[1700000000.5, "10"], [1700000001.5, "NaN"]],
        }
    ]
    assert bt.parse_matrix(result) == {("a", "total"): {1700000000500: 10.0, 1700000001500: None}}


def test_window_sums_add_the_samples_a_range_selector_selects():
    nan = math.nan
    samples = [1.0, 2.0, nan, 4.0, 8.0]  # every 30 s; NaN: no sample at that evaluation
    at = [0, 1, 2, 3, 4]
    # Prometheus 2: [t - 60s, t] holds 3 samples; Prometheus 3: (t - 60s, t] holds 2.
    assert window_sums(samples, 30, 60, at) == [1, 3, 3, 6, 12]
    assert window_sums(samples, 30, 60, at, left_closed=False) == [1, 3, 2, 4, 12]
    assert window_sums([nan, nan, 5.0], 30, 30, [0, 1, 2]) == [None, None, 5]


def test_window_sums_without_gaps_take_every_sample():
    samples = [1.0, 2.0, 4.0, 8.0]  # every 30 s, none missing
    assert window_sums(samples, 30, 60, [0, 1, 2, 3]) == [1, 3, 7, 14]
    assert window_sums(samples, 30, 60, [1, 3], left_closed=False) == [3, 12]


def test_derived_ratios_divide_like_promql():
    ratios = bt.sum_ratios([1.0, 0.0, None, 2.0], [4.0, 0.0, 1.0, 0.0])
    assert ratios[0] == 0.25 and math.isnan(ratios[1]) and math.isnan(ratios[2])
    assert ratios[3] == math.inf


def test_rule_spacing_is_the_interval_when_steps_are_multiples_of_it():
    assert bt.rule_spacing(60, 30) == 30 and bt.rule_spacing(30, 30) == 30
    assert bt.rule_spacing(45, 30) == 45 and bt.rule_spacing(10, 30) == 10


def test_chunks_cover_the_grid_in_max_points_pieces(monkeypatch):
    monkeypatch.setattr(bt, "MAX_POINTS", 10)
    assert bt.chunks(0, 25, 1) == [(0, 9), (10, 19), (20, 25)]
    assert bt.chunks(0, 9, 1) == [(0, 9)]
    pieces = bt.chunks(100, 100 + 29 * 7, 7)
    covered = [t for a, b in pieces for t in bt.step_grid(a, b, 7)]
    assert covered == bt.step_grid(100, 100 + 29 * 7, 7)


def test_step_runs_merge_close_steps():
    assert bt.step_runs([5, 1, 2, 3, 10, 100], gap=3) == [(1, 5), (10, 10), (100, 100)]
    assert bt.step_runs([]) == []


def test_other_window_is_fetched_only_where_the_gate_is_above_the_threshold():
    # 99 % over 1h; page: 10 % in 600 s → factor 0.6, threshold 0.006; short window 60 s.
    slo = events_slo("a", objective=99.0, window=3600, alerting=policy(("page", 0.1, 600, 60, 0)))
    assert bt.gate_windows(slo) == {60}  # both exact: the shorter is cheaper
    ratios = {"a": {60: [0.0, 0.01, 0.01, 0.0, 0.005, 0.02, 0.0]}}
    assert bt.gated_fetches([slo], ratios, list(range(7))) == [(600, {"a"}, (1, 5))]
    assert bt.gated_fetches([slo], {"a": {}}, list(range(7))) == []  # gate never above


def test_gated_runs_are_per_slo(monkeypatch):
    # Same policy as above (threshold 0.006 on the 60 s gate, 600 s fetched where above).
    a, b = (
        events_slo(n, objective=99.0, window=3600, alerting=policy(("page", 0.1, 600, 60, 0)))
        for n in "ab"
    )
    times = list(range(400))
    above_at = {"a": [0, 100, 200], "b": [300]}  # runs over 60 steps apart stay apart
    ratios = {
        n: {60: [0.01 if i in steps else 0.0 for i in times]} for n, steps in above_at.items()
    }
    assert bt.gated_fetches([a, b], ratios, times) == [
        (600, {"a"}, (0, 0)),
        (600, {"a"}, (100, 100)),
        (600, {"a"}, (200, 200)),
        (600, {"b"}, (300, 300)),
    ]
    monkeypatch.setattr(bt, "MAX_RUNS", 2)  # a has too many runs: its whole range, b stays
    assert bt.gated_fetches([a, b], ratios, times) == [
        (600, {"a"}, (0, 399)),
        (600, {"b"}, (300, 300)),
    ]


def test_slice_ratios_count_bad_over_judged_slices_per_window():
    # Judgements every 30s: bad, good, not judged, good. At the last one a 90s window
    # selects 4 samples on Prometheus 2 (the one exactly 90s old too): 1 bad of 3
    # judged; left-open (Prometheus 3) 3 samples: 0 bad of 2. The 30s window there:
    # the last two samples (left-closed), 0 bad of 1 judged.
    sliced = events_slo(
        "s",
        alerting=policy(("page", 0.02, 90.0, 30.0, 0.0)),
        timeslices=Timeslices(window=60.0, target=95.0),
    )
    judgements = [1.0, 0.0, math.nan, 0.0]
    assert bt.slice_ratios(sliced, judgements, 30.0, [3], True) == {90.0: [1 / 3], 30.0: [0.0]}
    assert bt.slice_ratios(sliced, judgements, 30.0, [3], False)[90.0] == [0.0]
    # No judgement in a window (left-open 30s at the not-judged sample): NaN, no ratio,
    # as the rule's result is absent.
    assert math.isnan(bt.slice_ratios(sliced, judgements, 30.0, [2], False)[30.0][0])
