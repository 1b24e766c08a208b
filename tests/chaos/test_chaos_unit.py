"""The chaos extension without a lab: theory, journal verdicts, pre-checks, targets,
the CLI's exit codes, and the real `chaos validate` / `chaos discover` on our files."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import secret_file, write_target
from tokenslo.chaos import actions, journal, runner, targets, theory
from tokenslo.cli import main
from tokenslo.core.model import SLO, Alerting, BurnWindow, EventsSLI, Timeslices
from tokenslo.errors import InputError, UnavailableError

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
REAL_IDP_EXPERIMENTS = sorted((REPO / "experiments" / "real-idp").glob("*.yaml"))
ALL_EXPERIMENTS = EXPERIMENTS + REAL_IDP_EXPERIMENTS
CHAOS = Path(sys.executable).with_name("chaos")
HOUR = 3600.0


def slo(objective: float = 99.9, window: float = 30 * 86400.0, policy=None) -> SLO:
    return SLO(
        name="x",
        service="s",
        objective=objective,
        window=window,
        sli=EventsSLI(total="sum(rate(t[{{window}}]))", bad="sum(rate(b[{{window}}]))"),
        alerting=Alerting(policy=policy),
    )


# -- theory -------------------------------------------------------------------------------------


def _sliced(**timeslices) -> SLO:
    return dataclasses.replace(slo(), timeslices=Timeslices(window=60.0, **timeslices))


@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_timeslices_theory_of_a_full_outage_is_hand_computable(scale):
    """99.9 % of 1m slices good at >= 95 %: the slice ending t after the injection is bad
    once t/60 > 5 %, at 3 s; the 1h/5m page needs 1.44 % of the hour bad: 3 + 51.84 s
    (the 5m window: 3 + 4.32 s). Mean ratio: the judgement rises over one slice to 1, so
    the hour's sum of it reaches 51.84 s at 51.84 + 30 s; the 5m window's reaches 4.32 s
    while still rising, at sqrt(2 × 60 × 4.32) s. Everything scales with the rules."""
    good = theory.first_to_fire(_sliced(target=95.0), "page", 1.0, scale)
    assert (good.long_window, good.short_window) == ("1h", "5m")
    assert good.theory_seconds == pytest.approx((3 + 51.84) / scale)
    mean = theory.first_to_fire(_sliced(method="mean-ratio"), "page", 1.0, scale)
    assert mean.theory_seconds == pytest.approx((51.84 + 30) / scale)
    assert theory.slice_crossing(
        Timeslices(60.0, method="mean-ratio"), 60.0, 300.0, 0.0144, 1.0
    ) == pytest.approx((2 * 60 * 4.32) ** 0.5)


@pytest.mark.parametrize(
    ("timeslices", "proven"),
    [
        ({"target": 95.0}, {"1h": 60.0, "6h": 150.0}),
        ({"method": "mean-ratio"}, {"1h": 90.0, "6h": 150.0}),
    ],
)
def test_timeslices_theory_is_within_the_slack_of_the_promtool_proof(timeslices, proven):
    """tests/rules/test_rules_timeslices.py and test_rules_ratio_timeslices.py prove with
    promtool (15s scrapes, 30s evaluations) when a full outage fires the 1h/5m and 6h/30m
    pages after the last healthy sample; the continuous theory (1h: 54.84 s and 81.84 s,
    6h: 132.6 s and 159.6 s) lies within one evaluation interval of each (judgements
    come on the evaluation grid, the ratios change at scrapes), well inside the probes'
    slack."""
    sliced = _sliced(**timeslices)
    assert theory.slack_seconds(15.0, 30.0, 0.0) > 30.0
    for long_window, fired in proven.items():
        expected = theory.first_to_fire(sliced, "page", 1.0, 1.0, long_window=long_window)
        assert abs(fired - expected.theory_seconds) < 30.0, (long_window, expected)


def test_timeslices_theory_knows_what_never_fires():
    # 4 % errors: no slice goes above its 5 % allowance, however long the fault lasts
    assert theory.first_to_fire(_sliced(target=95.0), "page", 0.04, 1.0) is None
    # mean ratio: 1 % errors average 1 %, under the 1h page's 1.44 % but over the 6h's 0.6 %
    mean = theory.first_to_fire(_sliced(method="mean-ratio"), "page", 0.01, 1.0)
    assert mean.long_window == "6h"


def test_event_theories_refuse_a_timeslices_slo_rather_than_predict_event_ratios():
    sliced = _sliced(target=95.0)
    with pytest.raises(InputError, match="'x' uses timeslices budgeting: the resolution time"):
        theory.resolution_seconds(sliced, "1h", 1.0, 60.0, 60.0)
    with pytest.raises(InputError, match="'x' uses timeslices budgeting"):
        theory.first_to_fire_held(sliced, "page", 1.0, 60.0, [theory.Held(60.0, 10.0, 0.0)])


@pytest.mark.parametrize("scale", [1.0, 60.0])
@pytest.mark.parametrize("objective", [99.9, 95.0])
def test_fastest_page_theory_is_the_long_window_crossing(scale, objective):
    budget = (100 - objective) / 100
    expected = theory.first_to_fire(slo(objective), "page", 1.0, scale)
    # 2% of a 30d budget in 1h: factor 14.4; the long window crosses last; a page has no
    # ``for`` by default.
    factor = 0.02 * 30 * 24
    assert expected.long_window == "1h"
    assert expected.theory_seconds == pytest.approx(factor * budget * HOUR / scale)


def test_lower_error_rate_detects_later_and_below_threshold_never():
    model = slo()
    full = theory.first_to_fire(model, "page", 1.0, 60).theory_seconds
    half = theory.first_to_fire(model, "page", 0.5, 60).theory_seconds
    assert half > full
    # 1.4 % errors: below the 1h page's 14.4 × 0.1 %, above the 6h page's 6 × 0.1 %
    assert theory.first_to_fire(model, "page", 0.014, 60).long_window == "6h"
    assert theory.first_to_fire(model, "page", 0.005, 60) is None


def test_a_named_long_window_picks_that_condition():
    expected = theory.first_to_fire(slo(), "page", 1.0, 60, long_window="6h")
    assert (expected.long_window, expected.short_window) == ("6h", "30m")
    assert expected.factor == pytest.approx(6.0)


def test_resolution_follows_the_short_window_after_a_long_incident():
    model = slo()
    reset = theory.resolution_seconds(model, "1h", 1.0, incident_seconds=20, time_scale=60)
    short = 5 * 60 / 60
    assert reset == pytest.approx(short - 14.4 * 0.001 * short)


def test_slack_is_two_scrapes_two_evaluations_and_one_poll():
    # The lab: 1 s scrape, 1 s evaluation, the probes poll every 0.25 s: 2 + 2 + 0.25.
    assert theory.slack_seconds(1.0, 1.0, 0.25) == pytest.approx(4.25)
    assert theory.slack_seconds(15.0, 30.0, 1.0) == pytest.approx(91.0)


def _steady(seconds: float, rate: float = 20.0) -> theory.Held:
    return theory.Held(seconds=seconds, events=rate * seconds, errors=0.0)


def test_windows_of_steady_traffic_give_the_textbook_crossing():
    # 1h at scale 60 is 60 s; threshold 14.4 x 0.1 % = 0.0144; full outage: 0.0144 x 60 s.
    crossing = theory.held_crossing(0.0144, [_steady(60.0)], 20.0, 1.0)
    assert crossing == pytest.approx(0.864)


def test_a_window_still_full_of_an_earlier_load_test_detects_later():
    # The flaky game day: at the injection the compressed 1h window (60 s) held, evenly
    # before its last 5 s, 11000 events of an earlier load test; its last 5 s (= the
    # short window) held 100 events at the game day's own 20 req/s. By hand, s < 55 s:
    #   errors  = 20 s                (every new request fails)
    #   events  = 11000 (55 - s) / 55 + 100 + 20 s = 11100 - 180 s
    #   crossing: 20 s = 0.0144 (11100 - 180 s)  ->  s = 159.84 / 22.592 = 7.07507 s
    # and a page has no ``for``. The steady theory says 0.864.
    profile = [theory.Held(seconds=55.0, events=11000.0, errors=0.0), _steady(5.0)]
    expected = theory.first_to_fire_held(slo(), "page", 1.0, 60.0, profile, long_window="1h")
    assert expected.theory_seconds == pytest.approx(159.84 / 22.592)
    assert expected.theory_seconds == pytest.approx(7.07507, abs=1e-5)
    steady = theory.first_to_fire(slo(), "page", 1.0, 60.0, long_window="1h")
    assert steady.theory_seconds == pytest.approx(0.864)


def test_recent_traffic_stays_in_the_window_longer_than_old_traffic():
    # The same 1200 events in a 60 s window, 20/s after the injection, threshold 1.44 %.
    # Held in its last 20 s they all stay for 40 s: 20 s = 0.0144 (1200 + 20 s) ->
    # s = 17.28 / 19.712 = 0.87662 s (no old events leave that soon). Held in its first
    # 20 s they leave from s = 0 at 60/s: 20 s = 0.0144 (1200 - 60 s + 20 s) ->
    # s = 17.28 / 20.576 = 0.83981 s.
    recent = [theory.Held(40.0, 0.0, 0.0), theory.Held(20.0, 1200.0, 0.0)]
    old = [theory.Held(20.0, 1200.0, 0.0), theory.Held(40.0, 0.0, 0.0)]
    assert theory.held_crossing(0.0144, recent, 20.0, 1.0) == pytest.approx(17.28 / 19.712)
    assert theory.held_crossing(0.0144, old, 20.0, 1.0) == pytest.approx(17.28 / 20.576)


def test_a_window_is_the_tail_of_the_profile_padded_when_short():
    profile = [theory.Held(10.0, 100.0, 10.0), theory.Held(10.0, 50.0, 0.0)]
    assert theory.window_of(profile, 15.0) == [
        theory.Held(5.0, 50.0, 5.0),
        theory.Held(10.0, 50.0, 0.0),
    ]
    assert theory.window_of(profile, 30.0)[0] == theory.Held(10.0, 0.0, 0.0)


def test_errors_already_in_the_window_cross_at_once_and_no_traffic_never():
    burning = theory.Held(seconds=60.0, events=1000.0, errors=100.0)
    assert theory.held_crossing(0.0144, [burning], 20.0, 1.0) == 0.0
    empty = theory.Held(seconds=60.0, events=0.0, errors=0.0)
    assert theory.held_crossing(0.0144, [empty], 0.0, 1.0) is None
    # 1 % errors never exceeds 1.44 %, however long it lasts
    assert theory.held_crossing(0.0144, [_steady(60.0)], 20.0, 0.01) is None


def test_old_errors_sliding_out_are_accounted_piecewise():
    # Older 30 s: 600 events, 60 errors; newer 30 s: 600 events, none failing; then
    # 20 req/s at 1 % errors. At the injection 60 / 1200 = 5 %: over a 4 % threshold at
    # once. Against 6 %: for s <= 30 the window holds 60 (30 - s) / 30 + 0.2 s errors
    # of 1200 events (old ones leave as fast as new ones come), 60 - 1.8 s < 72; after
    # that 0.2 s <= 12 < 72: it never crosses.
    older = theory.Held(seconds=30.0, events=600.0, errors=60.0)
    newer = theory.Held(seconds=30.0, events=600.0, errors=0.0)
    assert theory.held_crossing(0.04, [older, newer], 20.0, 0.01) == 0.0
    assert theory.held_crossing(0.06, [older, newer], 20.0, 0.01) is None


def test_traffic_that_really_came_after_the_injection_sets_when_errors_arrive():
    # A 60 s window held 600 events evenly (10/s), none failing; threshold 50 %; every
    # request after the injection fails. At a steady 10/s from the start: errors 10 s,
    # events 10 (60 - s) + 10 s = 600 -> 10 s = 300 -> s = 30.
    held = [_steady(60.0, rate=10.0)]
    assert theory.held_crossing(0.5, held, 10.0, 1.0) == pytest.approx(30.0)
    # A load that brings nothing for 10 s (clients slowed, or still ramping up), then
    # 10/s: for s >= 10, errors 10 (s - 10), events 10 (60 - s) + 10 (s - 10) = 500 ->
    # 10 s - 100 = 250 -> s = 35.
    stalled = [theory.Held(10.0, 0.0, 0.0)]
    assert theory.held_crossing(0.5, held, 10.0, 1.0, stalled) == pytest.approx(35.0)
    # Nothing for 10 s, a burst of 200 in the next 10 s, then 10/s: on [10, 20] errors
    # 20 (s - 10) against 0.5 (10 (60 - s) + 20 (s - 10)) would need s = 80/3 > 20; on
    # [20, 60] errors 200 + 10 (s - 20) = 10 s against 0.5 x 600 -> s = 30.
    burst = [theory.Held(10.0, 0.0, 0.0), theory.Held(10.0, 200.0, 0.0)]
    assert theory.held_crossing(0.5, held, 10.0, 1.0, burst) == pytest.approx(30.0)
    # The observed stretches' own error counts are not used: the fault's error rate is
    # the prediction, applied to the traffic that came.
    seen_failing = [theory.Held(10.0, 100.0, 100.0)]
    assert theory.held_crossing(0.5, held, 10.0, 0.0, seen_failing) is None


def test_held_counts_are_rates_times_the_window_only_for_rate_slis():
    from tokenslo.chaos import probes
    from tokenslo.core.model import LatencySLI

    assert probes._per_second(slo())  # sum(rate(t[{{window}}]))
    counted = EventsSLI(total="sum(increase(t[{{window}}]))", bad="sum(increase(b[{{window}}]))")
    assert not probes._per_second(SLO(name="c", service="s", objective=99.9, window=1.0,
                                      sli=counted))  # fmt: skip
    latency = LatencySLI(metric="h_seconds", threshold=0.3, selector="")
    assert not probes._per_second(SLO(name="l", service="s", objective=99.0, window=1.0,
                                      sli=latency))  # fmt: skip


def test_slack_grows_with_every_interval():
    base = theory.slack_seconds(1, 1, 0.25)
    assert theory.slack_seconds(2, 1, 0.25) > base
    assert theory.slack_seconds(1, 2, 0.25) > base
    assert theory.slack_seconds(1, 1, 1) > base


def test_time_scale_is_read_from_the_loaded_for():
    model = slo()  # tickets: 1d/2h for 24m, 3d/6h for 1h12m; pages have no for
    page = {"labels": {"long_window": "1h"}, "duration": 0}
    rules = [page, {"labels": {"long_window": "1d"}, "duration": 24.0}]
    assert targets.scale_from_rules(model, rules) == pytest.approx(60.0)
    assert targets.scale_from_rules(
        model, [{"labels": {"long_window": "3d"}, "duration": 432}]
    ) == (pytest.approx(10.0))
    assert targets.scale_from_rules(model, [page]) is None  # nothing to compare
    assert targets.scale_from_rules(model, []) is None  # 6h: for = 6h/12/5 = 360 s


# -- journal verdicts ---------------------------------------------------------------------------


def run_entry(name: str, status: str = "succeeded", output=None, exception=None) -> dict:
    entry = {"activity": {"name": name}, "status": status, "output": output}
    if exception:
        entry["exception"] = [exception]
    return entry


def a_journal(**overrides) -> dict:
    data = {
        "status": "completed",
        "deviated": False,
        "steady_states": {
            "before": {"steady_state_met": True, "probes": []},
            "after": {"steady_state_met": True, "probes": []},
        },
        "run": [
            run_entry(
                "page-fires",
                output={"detection_seconds": 2.0, "theory_seconds": 1.9, "within": True},
            )
        ],
        "rollbacks": [run_entry("clear")],
    }
    data.update(overrides)
    return data


def test_completed_without_deviation_holds_and_keeps_measurements():
    v = journal.verdict(a_journal())
    assert (v.outcome, v.exit_code) == ("held", 0)
    assert v.measurements == [
        {"activity": "page-fires", "detection_seconds": 2.0, "theory_seconds": 1.9, "within": True}
    ]


def test_deviation_exits_1_and_names_the_probe():
    after = {
        "steady_state_met": False,
        "probes": [{"activity": {"name": "not-paging"}, "status": "succeeded",
                    "tolerance_met": False, "output": {"page_ratio": 9}}],
    }  # fmt: skip
    v = journal.verdict(a_journal(deviated=True, steady_states={"after": after}))
    assert (v.outcome, v.exit_code) == ("deviated", 1)
    assert "not-paging" in v.reasons[0]


def test_a_failed_check_in_the_method_fails_the_run_although_chaos_says_completed():
    failed = run_entry("page-fires", "failed", exception="CheckNotMet: did not fire within 30s")
    v = journal.verdict(a_journal(run=[failed]))
    assert (v.outcome, v.exit_code) == ("failed", 1)
    assert "did not fire" in v.reasons[0]


def test_hypothesis_not_met_before_the_method_is_a_failure_not_a_pass():
    before = {"steady_state_met": False, "probes": [{"activity": {"name": "p"},
              "status": "succeeded", "tolerance_met": False, "output": 3}]}  # fmt: skip
    v = journal.verdict(a_journal(steady_states={"before": before}, run=[]))
    assert v.outcome == "failed"
    assert "before" in v.reasons[0]


def test_failed_rollback_and_interruption_and_missing_journal():
    assert journal.verdict(a_journal(rollbacks=[run_entry("clear", "failed")])).outcome == "failed"
    assert journal.verdict(a_journal(status="interrupted")).outcome == "interrupted"
    missing = runner.read_journal(Path("/nonexistent/journal.json"))
    v = journal.verdict(missing)
    assert v.exit_code == 1
    assert "no journal" in v.reasons[-1]


# -- pre-checks ---------------------------------------------------------------------------------

FAULT = """
title: t
configuration:
  expiry: {expiry}
method:
  - type: action
    name: inject
    provider:
      type: python
      module: tokenslo.chaos.actions
      func: inject_http_fault
      arguments:
        target: idp
        path_prefix: /token
        effect: status
        {expires}
rollbacks:
  {rollbacks}
"""
CLEAR = (
    "- {type: action, name: c, provider: {type: python, module: tokenslo.chaos.actions, "
    "func: clear_recorded_faults}}"
)


def write(tmp_path: Path, expires: str, expiry: str = "30", rollbacks: str = CLEAR) -> Path:
    path = tmp_path / "e.yaml"
    path.write_text(FAULT.format(expires=expires, expiry=expiry, rollbacks=rollbacks))
    return path


def test_fault_without_expiry_is_a_bad_experiment_naming_the_line(tmp_path):
    path = write(tmp_path, expires="status: 503")
    with pytest.raises(InputError) as err:
        runner.precheck(path, {}, {})
    assert "expires_in" in str(err.value)
    assert err.value.line is not None and err.value.field == "method[0].provider.arguments"


@pytest.mark.parametrize(
    "expires, expiry, overrides",
    [
        ("expires_in: 0", "30", {}),
        ("expires_in: -5", "30", {}),
        ("expires_in: soon", "30", {}),
        ('expires_in: "${expiry}"', "0", {}),
        ('expires_in: "${expiry}"', "30", {"expiry": -1.0}),
    ],
)
def test_non_positive_expiry_is_refused_also_via_variables(tmp_path, expires, expiry, overrides):
    path = write(tmp_path, expires=expires, expiry=expiry)
    with pytest.raises(InputError, match="expires_in must be"):
        runner.precheck(path, overrides, {})


def test_valid_expiry_passes_and_a_missing_rollback_does_not(tmp_path):
    runner.precheck(write(tmp_path, expires='expires_in: "${expiry}"'), {}, {})
    with pytest.raises(InputError, match="no rollback clears them"):
        runner.precheck(write(tmp_path, expires="expires_in: 5", rollbacks="[]"), {}, {})


@pytest.mark.parametrize("bad", [None, 0, -1, "", "x", float("nan"), float("inf"), True, 1e9])
def test_action_refuses_a_bad_expiry_before_any_request(bad):
    nowhere = {"tokenslo_target_file": "/none/target.yaml"}
    with pytest.raises(ValueError, match="expires_in"):
        actions.inject_http_fault("idp", "status", bad, path="/token", configuration=nowhere)
    with pytest.raises(ValueError, match="expires_in"):
        actions.rotate_signing_key(publish=False, expires_in=bad, configuration=nowhere)


def test_an_action_records_its_change_for_the_rollback_and_marks_the_injection():
    from types import SimpleNamespace

    from tokenslo.chaos.runstate import RunState

    run = RunState(run_id="r")
    admin = SimpleNamespace(base_url="http://admin")
    at = actions._record_change(
        run, admin, True, kind="clock", target="idp", ref="clock", expires_at=9.0, detail={}
    )
    (change,) = run.changes
    assert (change.kind, change.admin_url, change.set_at, change.expires_at) == (
        "clock",
        "http://admin",
        at,
        9.0,
    )
    assert change.cleared_at is None and run.events[actions.INJECTED_AT] == at
    quiet = RunState(run_id="q")
    later = actions._record_change(
        quiet,
        admin,
        False,
        kind="rotation",
        target="idp",
        ref="k",
        expires_at=None,
        detail={},
        undone=True,
    )
    assert quiet.changes[0].cleared_at == later and not quiet.events and not quiet.active()


def test_ctrl_c_while_a_fault_is_injected_still_records_it_for_the_rollback(monkeypatch):
    """Chaos Toolkit lets Ctrl-C raise in the action; arriving after the server added
    the fault but before the record, it used to leave a fault the rollback could not see."""
    import os
    import signal
    from types import SimpleNamespace

    from tokenslo.chaos.runstate import RunState

    run = RunState(run_id="r")

    def add_fault(*args, **kwargs) -> dict:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the server answers
        signal.sigtimedwait([], 0)
        return {"id": "f1", "expires_at": 99.0}

    admin = SimpleNamespace(base_url="http://admin", add_fault=add_fault)
    monkeypatch.setattr(actions, "_context", lambda configuration: (None, run))
    monkeypatch.setattr(actions, "_admin", lambda resolved, target: admin)
    with pytest.raises(KeyboardInterrupt):
        actions.inject_http_fault("proxy", "status", 30, path_prefix="/token")
    assert [(c.kind, c.ref) for c in run.active()] == [("fault", "f1")]


@pytest.mark.parametrize("where", [{}, {"path": "/token", "path_prefix": "/token"}])
def test_action_needs_exactly_one_of_path_and_path_prefix(where):
    nowhere = {"tokenslo_idp_url": "http://127.0.0.1:9", "tokenslo_admin_secret_file": "/none"}
    with pytest.raises(ValueError, match="exactly one of path"):
        actions.inject_http_fault("idp", "status", 30, **where, configuration=nowhere)


def test_configuration_resolution_matches_chaos_toolkit():
    declared = {
        "a": {"type": "env", "key": "A"},
        "b": {"type": "env", "key": "B", "default": "d"},
        "c": 3,
        "missing": {"type": "env", "key": "NOPE"},
    }
    resolved = runner.resolve_configuration(declared, {"A": "1"}, {"c": 4})
    assert resolved == {"a": "1", "b": "d", "c": 4}
    assert runner.parse_vars(["k=v", "x:float=2"]) == {"k": "v", "x:float": "2"}
    with pytest.raises(InputError):
        runner.parse_vars(["novalue"])


def _proxy_target(tmp_path, **extra) -> Path:
    """An external target: a real IdP behind a tokenslo proxy, nothing of the lab."""
    return write_target(
        tmp_path / "target.yaml",
        {
            "issuer": "https://idp.example",
            "discovery_url": "http://127.0.0.1:1/",
            "clients": {"prober": {"client_id": "p", "secret": {"env": "P_SECRET"}}},
            "faults": {
                "admin_secret_file": str(secret_file(tmp_path / "secret", "s3cr3t\n")),
                "idp": {"kind": "proxy", "admin_url": "http://127.0.0.1:2"},
            },
            **extra,
        },
    )


def test_targets_come_from_the_target_file_and_the_secret_stays_in_its_file(tmp_path):
    path = _proxy_target(tmp_path, prometheus={"url": "http://127.0.0.1:3"})
    resolved = targets.resolve({"tokenslo_target_file": str(path), "tokenslo_time_scale": "60"})
    assert resolved.target.discovery_url == "http://127.0.0.1:1"
    assert resolved.url("prometheus") == "http://127.0.0.1:3"
    assert resolved.admin_url("idp") == "http://127.0.0.1:2"
    assert resolved.admin_secret() == "s3cr3t"
    assert resolved.time_scale == 60
    assert "s3cr3t" not in repr(resolved)
    with pytest.raises(InputError, match="no fault injection for 'gateway'"):
        resolved.admin_url("gateway")
    with pytest.raises(InputError, match="needs webhook.url"):
        resolved.url("webhook")
    with pytest.raises(InputError, match=">= 1"):
        targets.resolve({"tokenslo_target_file": str(path), "tokenslo_time_scale": "0.5"})


def test_a_token_profile_is_refused_unless_the_target_is_the_lab(tmp_path):
    """A fault proxy cannot change what a real IdP signs: bad input before any request."""
    config = {"tokenslo_target_file": str(_proxy_target(tmp_path))}
    with pytest.raises(InputError, match="set_token_profile needs the lab IdP"):
        actions.set_token_profile(expires_in=30, scope="api.read", configuration=config)
    with pytest.raises(ValueError, match="expires_in"):
        actions.set_token_profile(expires_in=0, scope="api.read", configuration=config)


def test_every_bundled_experiment_declares_the_target_keys(tmp_path):
    """Chaos Toolkit passes --var only to declared keys: an external target reaches an
    experiment only through tokenslo_target_file (and the SLO paths, time scale)."""
    path = _proxy_target(tmp_path, prometheus={"url": "http://127.0.0.1:3"})
    assert REAL_IDP_EXPERIMENTS  # the bundled ones for an IdP behind the proxy count too
    for experiment in ALL_EXPERIMENTS:
        doc = runner.load_experiment(experiment)
        declared = doc.data.get("configuration") or {}
        assert {targets.TARGET_FILE_KEY, targets.SLO_PATHS_KEY} <= set(declared), experiment
        configuration = runner.resolve_configuration(
            declared, {}, {targets.TARGET_FILE_KEY: str(path), targets.SLO_PATHS_KEY: "slo/"}
        )
        resolved = targets.resolve(configuration)
        assert resolved.target.source == str(path), experiment
        assert resolved.url("prometheus") == "http://127.0.0.1:3"


# -- CLI exit codes -----------------------------------------------------------------------------


def test_cli_bad_experiment_exits_2_in_one_line(tmp_path, capsys):
    path = write(tmp_path, expires="status: 503")
    assert main(["chaos", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expires_in" in err and str(path) in err


def test_cli_yaml_syntax_error_exits_2_with_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("title: x\nmethod: [\n")
    assert main(["chaos", "run", str(path), "--target", str(tmp_path / "t.yaml")]) == 2
    assert f"{path}:" in capsys.readouterr().err


def test_cli_run_against_an_unreachable_target_exits_3_before_running(tmp_path, capsys):
    journal_path = tmp_path / "j.json"
    target = _proxy_target(tmp_path, prometheus={"url": "http://127.0.0.1:3"})
    code = main(
        ["chaos", "run", str(REPO / "experiments/idp-outage.yaml"),
         "--target", str(target), "--journal", str(journal_path)]
    )  # fmt: skip
    assert code == 3
    assert "discovery failed for http://127.0.0.1:1" in capsys.readouterr().err
    assert not journal_path.exists()


def test_cli_list_shows_every_experiment(capsys):
    assert main(["chaos", "list", str(REPO / "experiments")]) == 0
    out = capsys.readouterr().out
    assert all(path.name in out for path in EXPERIMENTS)


# -- the real Chaos Toolkit ---------------------------------------------------------------------


def test_experiment_files_exist():
    names = {p.stem for p in EXPERIMENTS}
    assert {
        "idp-outage", "idp-outage-drop", "jwks-unavailable", "jwks-truncated",
        "jwks-rotation-while-down", "clock-skew", "clock-skew-beyond-leeway",
        "key-rotation-unpublished", "introspection-overload", "revocation-delay",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", ALL_EXPERIMENTS, ids=lambda p: p.stem)
def test_chaos_validate_and_our_prechecks_pass(path):
    runner.precheck(path, {}, {})
    result = subprocess.run(
        [str(CHAOS), "--no-version-check", "--no-log-file", "validate", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    experiment = runner.load_experiment(path).data
    assert experiment["runtime"]["rollbacks"]["strategy"] == "always"


def test_chaos_discover_lists_probes_and_actions(tmp_path):
    out = tmp_path / "discovery.json"
    result = subprocess.run(
        [str(CHAOS), "--no-version-check", "--no-log-file", "discover", "--no-install",
         "--discovery-path", str(out), "tokenslo"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    found = {(a["type"], a["name"]): a for a in json.loads(out.read_text())["activities"]}
    for probe in ("slo_burn_rate", "wait_for_alert", "wait_for_alert_resolved",
                  "alert_delivered", "revocation_propagation", "token_can_be_issued"):  # fmt: skip
        assert ("probe", probe) in found
    for action in actions.__all__:
        assert ("action", action) in found
    inject = found[("action", "inject_http_fault")]
    expires = next(a for a in inject["arguments"] if a["name"] == "expires_in")
    assert "default" not in expires and expires["type"] == "number"
    assert inject["doc"]


def test_unreachable_prometheus_is_unavailable(tmp_path):
    path = _proxy_target(tmp_path, prometheus={"url": "http://127.0.0.1:9"})
    resolved = targets.resolve({"tokenslo_target_file": str(path)})
    with pytest.raises(UnavailableError):
        targets.prometheus_timing(resolved.url("prometheus"))


def test_background_load_defaults_to_paced_locust_with_the_chosen_scenario(tmp_path):
    resolved = targets.resolve({"tokenslo_target_file": str(_proxy_target(tmp_path))})
    logs = {"workdir": str(tmp_path / "w"), "stats": str(tmp_path / "s.json")}
    argv = actions._locust_argv(resolved, 89.5, 2, "fresh-api", 20.0, logs)
    flag = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    assert argv[2:5] == ["tokenslo", "loadtest", "run"]
    assert flag["--scenario"] == "fresh-api" and flag["--rate"] == "20"
    assert flag["--users"] == "2" and flag["--duration"] == "90s"
    assert flag["--target"] == str(tmp_path / "target.yaml")
    with pytest.raises(ValueError, match="scenario must be one of"):
        actions._locust_argv(resolved, 10, 2, "everything", 20.0, logs)
    defaults = inspect.signature(actions.start_background_load).parameters
    assert defaults["driver"].default == "locust" and defaults["users"].default == 10
    assert actions.DEFAULT_RATE["locust"] > 0


@pytest.mark.parametrize("bad", [{"rate": -1}, {"rate": float("inf")}, {"driver": "wrk"}])
def test_background_load_refuses_bad_arguments_before_starting_anything(bad):
    nowhere = {"tokenslo_target_file": "/none/target.yaml"}
    with pytest.raises(ValueError):
        actions.start_background_load(10, configuration=nowhere, **bad)


def test_the_observed_crossing_is_the_first_time_every_window_is_over_the_threshold():
    # Threshold 0.5. The long window crosses at t=2 (6/10), the short one only at t=3
    # (3/4); at t=1 the short one is over (2/3) but the long one is not (4/10).
    long = {0.0: (10.0, 0.0), 1.0: (10.0, 4.0), 2.0: (10.0, 6.0), 3.0: (10.0, 7.0)}
    short = {0.0: (2.0, 0.0), 1.0: (3.0, 2.0), 2.0: (4.0, 2.0), 3.0: (4.0, 3.0)}
    assert theory.observed_crossing(0.5, [long, short]) == 3.0
    # exactly at the threshold is not over it; a window with no events is no ratio
    assert theory.observed_crossing(0.5, [{0.0: (4.0, 2.0)}]) is None
    assert theory.observed_crossing(0.5, [{0.0: (0.0, 0.0)}, {0.0: (1.0, 1.0)}]) is None
    # a point missing from one window (no sample) is not a crossing
    assert theory.observed_crossing(0.5, [{1.0: (1.0, 1.0)}, {2.0: (1.0, 1.0)}]) is None


def test_an_observed_expectation_adds_the_scaled_for():
    # 99.9 %, a 1h/5m page at scale 60: threshold 14.4 x 0.1 % = 0.0144 (1/100 is not
    # over it, 2/100 is), with a for of 1m / 60 = 1 s
    model = slo(policy=(BurnWindow("page", 0.02, HOUR, 300.0, for_=60.0),))
    window = theory.conditions(model, "page", "1h")[0]
    over = {0.0: (100.0, 0.0), 0.5: (100.0, 1.0), 1.0: (100.0, 2.0)}
    expected = theory.observed_expectation(model, window, 60.0, over, over)
    assert expected.theory_seconds == pytest.approx(2.0)
    never = theory.observed_expectation(model, window, 60.0, {0.0: (100.0, 1.0)}, over)
    assert never.theory_seconds is None
