"""The gate's pure logic: the minimum-sample rule, exact comparisons, states and verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tokenslo.engine.evaluator import WindowCounts
from tokenslo.load import gate
from tokenslo.load.recorder import Recorder
from tokenslo.spec.model import SLO, EventsSLI, LatencySLI

EVENTS = EventsSLI(total="sum(rate(x_total[{{window}}]))", bad="sum(rate(x_total[{{window}}]))")


def slo(objective=99.9, sli=EVENTS, requests=("token:client_credentials",), **kw) -> SLO:
    return SLO(
        name=kw.pop("name", "s"), service="idp", objective=objective, window=30 * 86400.0,
        sli=sli, loadtest=requests, **kw,
    )  # fmt: skip


def recorded(name: str, ok_ms: list[float], failures: int = 0) -> Recorder:
    rec = Recorder()
    for ms in ok_ms:
        rec.record(name, ms, None, start=1000.0)
    for _ in range(failures):
        rec.record(name, 1.0, "HTTP 503", start=1001.0)
    return rec


@pytest.mark.parametrize(
    ("objective", "needed"), [(99.9, 3000), (99.95, 6000), (95, 60), (99, 300), (99.99, 30000)]
)
def test_rule_of_three(objective, needed):
    assert gate.min_requests(slo(objective)) == needed


def test_min_requests_override():
    assert gate.min_requests(slo(99.9, loadtest_min_requests=50)) == 50


def test_within_budget_is_exact_at_the_boundary():
    s = slo(99.9)
    assert gate.within_budget(3, 3000, s)
    assert not gate.within_budget(4, 3000, s)
    assert gate.within_budget(0, 1, s)


def test_availability_pass_fail_and_insufficient():
    s = slo(99.9)
    passing = gate.client_check(s, recorded("token:client_credentials", [1.0] * 2997, 3))
    assert (passing.state, passing.count, passing.bad) == ("pass", 3000, 3)
    failing = gate.client_check(s, recorded("token:client_credentials", [1.0] * 2996, 4))
    assert failing.state == "fail" and "99.867%" in failing.message
    few = gate.client_check(s, recorded("token:client_credentials", [1.0] * 2999))
    assert few.state == "insufficient_data" and "3000" in few.message


def test_too_few_requests_is_insufficient_even_when_they_look_bad():
    check = gate.client_check(slo(99.9), recorded("token:client_credentials", [1.0] * 10, 5))
    assert check.state == "insufficient_data"


def test_requests_of_several_names_are_combined():
    s = slo(99.9, requests=("token:client_credentials", "token:refresh_token"))
    rec = recorded("token:client_credentials", [1.0] * 1500)
    rec.merge(recorded("token:refresh_token", [1.0] * 1500))
    rec.merge(recorded("jwks", [1.0], failures=100))  # not named by the SLO
    check = gate.client_check(s, rec)
    assert (check.state, check.count, check.bad) == ("pass", 3000, 0)


def test_latency_uses_the_threshold_exactly_and_only_successes():
    s = slo(95, sli=LatencySLI(metric="m", threshold=0.3))
    # 57 at exactly 300 ms (good), 3 at 300.001 ms (bad): 95% exactly → pass
    rec = recorded("token:client_credentials", [300.0] * 57 + [300.001] * 3, failures=40)
    check = gate.client_check(s, rec)
    assert (check.kind, check.count, check.bad, check.state) == ("latency", 60, 3, "pass")
    rec.record("token:client_credentials", 300.0004, None)  # rounds up to 300.001 ms: slow
    assert gate.client_check(s, rec).state == "fail"


def test_no_requests_is_no_data():
    check = gate.client_check(slo(), Recorder())
    assert check.state == "no_data"


def test_only_slos_with_loadtest_requests_are_gated():
    checks = gate.client_checks([slo(name="a"), slo(name="b", requests=())], Recorder())
    assert [c.slo for c in checks] == ["a"]


@pytest.mark.parametrize(
    ("counts", "state"),
    [
        (WindowCounts(errors=1.0, total=1000.0), "pass"),  # burn exactly 1
        (WindowCounts(errors=2.0, total=1000.0), "fail"),
        (WindowCounts(errors=0.0, total=0.0), "no_data"),
        (WindowCounts(errors=None, total=None), "no_data"),
        (None, "no_data"),
    ],
)
def test_server_check(counts, state):
    check = gate.server_check(slo(99.9), counts, 31.0)
    assert check.state == state
    assert check.name == "s server"


def test_verdict_priority():
    base = gate.client_check(slo(95), recorded("token:client_credentials", [1.0] * 60))
    ok, bad = base, replace(base, state="fail")
    unknown = replace(base, state="insufficient_data")
    assert gate.verdict([ok]).exit_code == 0
    assert gate.verdict([ok, unknown]).exit_code == 3
    assert gate.verdict([unknown, bad]).exit_code == 1
    assert gate.verdict([]).exit_code == 3


BAD_GATE = """\
version: tokenslo/v1
service: idp
slos:
  - name: a
    objective: 99.9
    window: 30d
    sli:
      events:
        total: sum(rate(x[{{window}}]))
        bad: sum(rate(y[{{window}}]))
    loadtest:
      requests: 5
"""


@pytest.mark.parametrize(
    ("gate_file", "expected"),
    [
        ("bad.yaml", "bad.yaml:12:17: slos[0].loadtest.requests: expected a list"),
        ("missing.yaml", "missing.yaml"),
    ],
)
def test_a_bad_gate_exits_2_in_one_line_before_any_load(tmp_path, gate_file, expected):
    """End to end through the real process: bad gate input is exit 2, one line naming
    the file (and line and field), and no load runs and no output is written."""
    import subprocess
    import sys

    (tmp_path / "bad.yaml").write_text(BAD_GATE)
    out = tmp_path / "gate.json"
    done = subprocess.run(
        [sys.executable, "-m", "tokenslo", "loadtest", "run", "--scenario", "mixed",
         "--duration", "5s", "--gate", str(tmp_path / gate_file), "--json", str(out),
         "--target", "http://127.0.0.1:1"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert expected in done.stderr
    assert not out.exists()
