"""gameday.yaml parsing: the bundled default, a full external target, and bad input
(one InputError naming file, line and field → exit 2 through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenslo.errors import EXIT_USAGE, InputError
from tokenslo.gameday import plan as gp

REPO = Path(__file__).resolve().parents[2]

EXTERNAL = """\
version: 1
title: Staging game day
target:
  kind: external
  file: staging/target.yaml
slo_paths: [slo/idp.yaml]
load: {driver: loadgen, rate: 2, warmup: 1m}
recovery_timeout: 15m
experiments:
  - name: idp-outage
    expect: held
    timeout: 40m
    vars: {fault_expiry: 1800, alert_timeout: 900, load_driver: loadgen, ratio: 0.5}
  - file: experiments/clock-skew-beyond-leeway.yaml
    expect: deviated
    alerts: [token-validation-success/page]
"""


def parse(text: str) -> gp.GameDayPlan:
    return gp.parse_plan(text, "gameday.yaml")


def test_bundled_default_is_the_lab_rehearsal_of_the_issue():
    plan = gp.load_plan(None)
    assert plan.target.kind == "lab" and plan.time_scale == 60
    core = {e.name: e.expect for e in plan.selected(False)}
    assert core == {
        "idp-outage": "held",
        "jwks-unavailable": "held",
        "clock-skew": "held",
        "clock-skew-beyond-leeway": "deviated",
    }
    everything = plan.selected(True)
    assert len(everything) == len(list((REPO / "experiments").glob("*.yaml")))
    for experiment in everything:
        assert (REPO / experiment.file).is_file(), experiment.file


def test_external_target_with_real_time_and_typed_vars():
    plan = parse(EXTERNAL)
    assert plan.target.kind == "external" and plan.time_scale == 1.0  # default for external
    assert plan.target == gp.Target(kind="external", file="staging/target.yaml")
    assert plan.load.rate == 2 and plan.load.warmup == 60 and plan.recovery_timeout == 900
    outage, skew = plan.experiments
    assert outage.file == "experiments/idp-outage.yaml" and outage.timeout == 2400
    assert outage.vars == {
        "fault_expiry:int": "1800",
        "alert_timeout:int": "900",
        "load_driver": "loadgen",
        "ratio:float": "0.5",
    }
    assert gp.typed_vars(outage.vars) == {
        "fault_expiry": 1800,
        "alert_timeout": 900,
        "load_driver": "loadgen",
        "ratio": 0.5,
    }
    assert skew.name == "clock-skew-beyond-leeway" and skew.expect == "deviated"
    assert skew.alerts == ("token-validation-success/page",)


def test_expected_alerts_come_from_the_experiment_unless_listed():
    import yaml

    data = yaml.safe_load((REPO / "experiments" / "idp-outage.yaml").read_text())
    assert gp.alerts_in_experiment(data) == ("token-issuance-availability/page",)
    listed = gp.ExperimentPlan("x", "x.yaml", "held", alerts=())
    assert gp.expected_alerts(listed, data) == ()
    derived = gp.ExperimentPlan("x", "x.yaml", "held")
    assert gp.expected_alerts(derived, data) == ("token-issuance-availability/page",)


BAD = [
    ("experiments: []\n", 1, "experiments", "non-empty list"),
    ("experiments: [idp-outage]\nbogus: 1\n", 2, "bogus", "unknown setting"),
    ("time_scale: 0.5\nexperiments: [idp-outage]\n", 1, "time_scale", ">= 1"),
    ("time_scale: fast\nexperiments: [idp-outage]\n", 1, "time_scale", "number"),
    ("version: 2\nexperiments: [idp-outage]\n", 1, "version", "unsupported"),
    (
        "experiments:\n  - name: idp-outage\n    expect: maybe\n",
        3,
        "experiments[0].expect",
        "held, deviated",
    ),
    (
        "experiments:\n  - name: a\n  - name: b\n    timeout: soon\n",
        4,
        "experiments[1].timeout",
        "duration",
    ),
    (
        "experiments:\n  - name: a\n    alerts: [token-issuance-availability/urgent]\n",
        3,
        "experiments[0].alerts[0]",
        "<slo>/<page|ticket>",
    ),
    ("experiments:\n  - expect: held\n", 2, "experiments[0]", "needs name"),
    ("experiments: [a, a]\n", 1, "experiments[1]", "listed twice"),
    ("load: {driver: vegeta}\nexperiments: [a]\n", 1, "load.driver", "loadgen, locust, none"),
    ("load: {rate: 0}\nexperiments: [a]\n", 1, "load.rate", "between"),
    ("load: fast\nexperiments: [a]\n", 1, "load", "must be a mapping"),
    ("target: [lab]\nexperiments: [a]\n", 1, "target", "must be a mapping"),
    ("target: {kind: cloud}\nexperiments: [a]\n", 1, "target.kind", "lab, external"),
    (
        "target:\n  kind: external\nexperiments: [a]\n",
        2,
        "target",
        "needs file",
    ),
    (
        "target: {kind: lab, prometheus_url: http://p}\nexperiments: [a]\n",
        1,
        "target.prometheus_url",
        "unknown setting",
    ),
    (
        "target:\n  kind: lab\n  file: t.yaml\nexperiments: [a]\n",
        3,
        "target.file",
        "only for kind: external",
    ),
    (
        "target:\n  kind: external\n  file: t.yaml\n  lab_config: l.yaml\nexperiments: [a]\n",
        4,
        "target.lab_config",
        "only for kind: lab",
    ),
    ("experiments: [a\n", 2, None, ""),  # YAML syntax error at its mark
]


@pytest.mark.parametrize("text, line, field, words", BAD, ids=[b[2] or "syntax" for b in BAD])
def test_bad_input_names_file_line_and_field(text, line, field, words):
    with pytest.raises(InputError) as caught:
        parse(text)
    err = caught.value
    assert err.file == "gameday.yaml" and err.line == line, str(err)
    assert err.field == field, str(err)
    assert words in str(err)
    assert err.exit_code == EXIT_USAGE


def test_cli_exits_2_with_one_line_for_a_bad_file(tmp_path, capsys):
    from tokenslo.cli import main

    bad = tmp_path / "gameday.yaml"
    bad.write_text("experiments:\n  - name: idp-outage\n    expect: maybe\n")
    code = main(["gameday", str(bad), "--no-progress", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and f"{bad}:3:" in err and "experiments[0].expect" in err
    assert not (tmp_path / "r").exists()  # nothing started, nothing written


def test_missing_experiment_file_is_bad_input_before_anything_starts(tmp_path, capsys):
    from tokenslo.cli import main

    plan = tmp_path / "gameday.yaml"
    plan.write_text(f"experiments_dir: {tmp_path}\nexperiments: [nowhere]\n")
    code = main(["gameday", str(plan), "--no-progress", "--state-dir", str(tmp_path / "s")])
    assert code == 2
    assert "nowhere.yaml" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_documented_real_idp_example_parses_with_its_target():
    from tokenslo.target.loader import load_target

    plan = gp.load_plan(REPO / "docs" / "examples" / "gameday.yaml")
    assert plan.target.kind == "external" and plan.time_scale == 1.0
    assert [e.file for e in plan.experiments] == [
        "experiments/real-idp/token-endpoint-outage.yaml",
        "experiments/real-idp/jwks-outage.yaml",
    ]
    for experiment in plan.experiments:
        assert (REPO / experiment.file).is_file()
    target = load_target(REPO / plan.target.file)
    assert target.discovery_url != target.issuer  # clients discover behind the proxy
    assert target.fault_admin("idp").kind == "proxy"


def test_target_flag_points_the_game_day_at_a_target_file(tmp_path, capsys):
    """--target replaces the plan's target: an unreachable real IdP is exit 3, and no lab
    is started in its place."""
    from support import write_target
    from tokenslo.cli import main
    from tokenslo.prometheus.process import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    target = write_target(
        tmp_path / "target.yaml",
        {"issuer": nowhere, "clients": {"load": {"client_id": "c", "secret": {"env": "X"}}},
         "prometheus": {"url": nowhere}, "state_dir": str(tmp_path / "runs")},
    )  # fmt: skip
    state = tmp_path / "lab"
    code = main(["gameday", "--target", str(target), "--no-progress", "--state-dir", str(state),
                 "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 3
    assert f"discovery failed for {nowhere}" in capsys.readouterr().err
    assert not state.exists()  # the lab was not started instead
