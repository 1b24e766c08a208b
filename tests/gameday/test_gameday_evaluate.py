"""Per-experiment evaluation from synthetic observations (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tokenslo.gameday import evaluate as ev
from tokenslo.gameday import timeline as tl

ALERT = "token-issuance-availability/page"
SLO = "token-issuance-availability"


def fired(at: float, experiment: str = "idp-outage", slo: str = SLO) -> tl.Event:
    return tl.Event(at, tl.ALERT_FIRING, experiment, slo=slo, severity="page", detail="1h/5m")


def delivered(at: float, experiment: str = "idp-outage") -> tl.Event:
    return tl.Event(at, tl.ALERT_DELIVERED, experiment, slo=SLO, severity="page")


def journal_detection(seconds: float, within: bool = True) -> ev.Detection:
    return ev.Detection(ALERT, True, seconds, 2.87, 4.25, within, "journal")


RUN = ev.ExperimentRun(
    name="idp-outage",
    file="experiments/idp-outage.yaml",
    expect="held",
    expected_alerts=(ALERT,),
    outcome="held",
    started_at=1000.0,
    ended_at=1030.0,
    detections=(journal_detection(3.1),),
    injected_at=1005.0,
    cleared_at=1020.0,
    recovered_at=1041.5,
    budget_before={SLO: 0.98, "jwks-availability": 1.0},
    budget_after={SLO: 0.95, "jwks-availability": 0.999},
    budget_consumed={SLO: 0.03, "jwks-availability": 0.001},
    theory={ALERT: (2.87, 4.25)},
)
EVENTS = [fired(1008.0), delivered(1009.0)]


def test_everything_as_expected_is_met():
    result = ev.evaluate_experiment(RUN, EVENTS)
    assert result.met and result.status == "passed" and result.misses == ()
    assert result.fired_alerts == (ALERT,) and result.delivered_alerts == (ALERT,)
    assert result.detections == (journal_detection(3.1),)
    assert result.recovery_seconds == pytest.approx(21.5)
    assert result.budget[SLO]["consumed"] == pytest.approx(0.03)
    assert result.budget_consumed == pytest.approx(0.03)  # of the SLO it expects to page
    assert ev.exit_code([result], interrupted=False) == 0


def test_expected_deviation_that_was_detected_is_met():
    run = replace(
        RUN,
        name="clock-skew-beyond-leeway",
        expect="deviated",
        outcome="deviated",
        reasons=("hypothesis (after): out of tolerance",),
    )
    events = [fired(1008.0, run.name), delivered(1009.0, run.name)]
    result = ev.evaluate_experiment(run, events)
    assert result.met, result.misses
    assert result.outcome == "deviated" and result.expected_outcome == "deviated"


def test_a_deviation_with_a_broken_activity_is_missed():
    run = replace(
        RUN,
        expect="deviated",
        outcome="deviated",
        reasons=(
            "hypothesis (after): 'validation-not-paging' out of tolerance",
            "method activity 'start-background-load' failed: did not start",
        ),
    )
    result = ev.evaluate_experiment(run, EVENTS)
    assert result.misses == (
        "deviated as expected, but method activity 'start-background-load' failed: did not start",
    )


def test_a_deviation_whose_alert_never_fired_is_missed():
    run = replace(RUN, expect="deviated", outcome="deviated", detections=())
    result = ev.evaluate_experiment(run, [])
    assert not result.met and result.status == "failed"
    assert f"{ALERT} did not fire" in result.misses
    assert result.detections[0].source == "timeline" and not result.detections[0].fired
    assert ev.exit_code([result], interrupted=False) == 1


def test_unexpected_outcome_names_the_first_reason():
    run = replace(RUN, outcome="failed", reasons=("method activity 'x' failed: boom",))
    result = ev.evaluate_experiment(run, EVENTS)
    assert result.misses[0] == (
        "expected the hypothesis to hold, it failed: method activity 'x' failed: boom"
    )


def test_detection_beyond_theory_plus_slack_is_missed_via_the_timeline():
    run = replace(RUN, detections=())  # the probe raised: no journal measurement
    late = [fired(1005.0 + 2.87 + 4.25 + 0.5), delivered(1013.0)]
    result = ev.evaluate_experiment(run, late)
    (detection,) = result.detections
    assert detection.source == "timeline" and detection.detection_seconds == pytest.approx(7.62)
    assert not detection.within
    assert any("beyond theory 2.87s + slack 4.25s" in m for m in result.misses)
    in_time = ev.evaluate_experiment(run, [fired(1009.0), delivered(1010.0)])
    assert in_time.met and in_time.detections[0].detection_seconds == pytest.approx(4.0)


def test_an_alert_from_before_the_injection_is_not_its_detection():
    run = replace(RUN, detections=())
    result = ev.evaluate_experiment(run, [fired(990.0), delivered(991.0)])
    assert not result.detections[0].fired and not result.met


def test_journal_measurement_outside_theory_is_missed():
    run = replace(RUN, detections=(journal_detection(9.0, within=False),))
    result = ev.evaluate_experiment(run, EVENTS)
    assert not result.met and "detected after 9.0s" in result.misses[0]


def test_delivery_is_checked_only_when_there_is_a_receiver():
    undelivered = [fired(1008.0)]
    result = ev.evaluate_experiment(RUN, undelivered)
    assert result.misses == (f"{ALERT} fired but was not delivered to the receiver",)
    blind = ev.evaluate_experiment(replace(RUN, delivery_known=False), undelivered)
    assert blind.met and blind.delivered_alerts is None


def test_slos_still_paging_after_the_timeout_is_missed():
    result = ev.evaluate_experiment(replace(RUN, recovered_at=None), EVENTS)
    assert result.misses == ("SLOs still paging at the end of the recovery timeout",)
    assert result.recovery_seconds is None


def test_unexpected_alerts_are_reported_not_failed():
    other = fired(1010.0, slo="jwks-availability")
    result = ev.evaluate_experiment(RUN, [*EVENTS, other])
    assert result.met and result.unexpected_alerts == ("jwks-availability/page",)
    assert "also fired: jwks-availability/page" in ev.to_report_experiment(result).notes


def test_events_of_other_experiments_do_not_count():
    result = ev.evaluate_experiment(RUN, [fired(1008.0, "jwks-unavailable")])
    assert not result.met and result.fired_alerts == ()


def test_interrupted_and_error_runs():
    interrupted = ev.evaluate_experiment(replace(RUN, outcome="interrupted"), EVENTS)
    assert interrupted.status == "interrupted" and not interrupted.met
    assert ev.exit_code([interrupted], interrupted=True) == 130
    error = ev.evaluate_experiment(replace(RUN, error="IdP unreachable"), EVENTS)
    assert error.status == "error" and error.outcome == "error"
    assert error.misses == ("could not run: IdP unreachable",)


def test_detections_from_a_journal():
    journal = {
        "run": [
            {"activity": {"provider": {"func": "wait_for_alert"}},
             "output": {"slo": SLO, "severity": "page", "fired": True, "within": True,
                        "detection_seconds": 3.2, "theory_seconds": 2.87,
                        "slack_seconds": 4.25}},
            {"activity": {"provider": {"func": "wait_for_alert"}}, "output": None,
             "status": "failed"},
            {"activity": {"provider": {"func": "remember_token"}}, "output": {"slo": "x"}},
        ]
    }  # fmt: skip
    assert ev.detections_from_journal(journal) == [
        ev.Detection(ALERT, True, 3.2, 2.87, 4.25, True, "journal")
    ]


def test_report_row_and_table():
    result = ev.evaluate_experiment(RUN, EVENTS)
    row = ev.to_report_experiment(result)
    assert (row.name, row.status, row.detection_time, row.detection_theory) == (
        "idp-outage", "passed", 3.1, 2.87,
    )  # fmt: skip
    assert row.expected_alerts == row.fired_alerts == (ALERT,)
    missed = ev.evaluate_experiment(replace(RUN, name="jwks", recovered_at=None), [])
    table = ev.format_table([result, missed])
    lines = table.splitlines()
    assert lines[0].startswith("experiment") and set(lines[1]) <= {"-", " "}
    assert "idp-outage" in lines[2] and lines[2].endswith("MET")
    assert "1/1" in lines[2] and "3.1s (2.9s+4.2s)" in lines[2] and "3.00%" in lines[2]
    assert lines[3].startswith("jwks") and lines[3].endswith("FAILED") and "0/1" in lines[3]
    doc = ev.result_to_json(result)
    assert doc["injected_at"].endswith("Z") and doc["detections"][0]["within"] is True
