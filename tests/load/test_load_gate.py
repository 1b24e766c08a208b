"""The gate's pure logic: the minimum-sample rule, exact comparisons, states and verdict."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tokenslo.core.model import SLO, EventsSLI, LatencySLI, Timeslices
from tokenslo.engine.evaluator import WindowCounts
from tokenslo.load import gate
from tokenslo.load.recorder import Recorder

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


def test_too_few_requests_that_look_bad_are_insufficient_unless_the_breach_is_certain():
    # 1 failure in 100 at 99.9%: 9.5% likely at a 0.1% error rate, so it proves nothing
    check = gate.client_check(slo(99.9), recorded("token:client_credentials", [1.0] * 99, 1))
    assert check.state == "insufficient_data"
    # 1 in 51: < 5% likely at 0.1% (the Clopper-Pearson lower bound exceeds the budget)
    check = gate.client_check(slo(99.9), recorded("token:client_credentials", [1.0] * 50, 1))
    assert check.state == "fail" and "whatever the sample size" in check.message


def test_every_request_failing_is_a_breach_not_insufficient_data():
    rec = Recorder()
    for _ in range(1555):
        rec.record("introspect", 2.0, "401 invalid_client", start=1000.0)
    avail = gate.client_check(slo(99.9, requests=("introspect",)), rec)
    assert (avail.state, avail.count, avail.bad) == ("fail", 1555, 1555)
    assert avail.reasons == (("401 invalid_client", 1555),)
    assert "401 invalid_client ×1555" in avail.detail
    latency = gate.client_check(slo(95, sli=LatencySLI("m", 0.3), requests=("introspect",)), rec)
    assert latency.state == "no_data"
    assert "all 1555 requests named introspect failed (401 invalid_client ×1555)" in latency.message
    assert latency.detail == latency.message  # the reasons are not repeated


def test_reasons_are_the_top_three_failures_with_counts():
    rec = recorded("token:client_credentials", [1.0] * 100)
    for error, count in (
        ("503", 9),
        ("connection error", 5),
        ("400 invalid_request", 2),
        ("502", 1),
    ):
        for _ in range(count):
            rec.record("token:client_credentials", 1.0, error)
    check = gate.client_check(slo(99.9), rec)
    assert check.reasons == (("503", 9), ("connection error", 5), ("400 invalid_request", 2))
    assert check.detail.endswith("failures: 503 ×9, connection error ×5, 400 invalid_request ×2")
    server = gate.server_check(slo(99.9), WindowCounts(errors=20.0, total=100.0), 31.0, rec)
    assert server.state == "fail" and "503 ×9" in server.detail


def test_only_slos_naming_a_sent_request_are_judged():
    slos = [
        slo(name="issue", requests=("token:client_credentials", "token:refresh_token")),
        slo(name="api", requests=("api:resource",)),
        slo(name="refresh", requests=("token:refresh_token",)),
        slo(name="ungated", requests=()),
    ]
    scope = gate.Scope(
        "issuance",
        frozenset({"token:client_credentials"}),
        {"token:refresh_token": "the IdP issues no refresh tokens"},
    )
    judged, skipped = gate.in_scope(slos, scope)
    assert [s.name for s in judged] == ["issue"]
    reasons = {n.slo: n.reason for n in skipped}
    assert reasons == {
        "api": "scenario issuance sends no api:resource requests",
        "refresh": "the IdP issues no refresh tokens",
    }
    assert gate.verdict([], skipped).exit_code == 3


def test_timeslices_slos_are_not_gated_whatever_the_scope():
    """A share of good requests cannot judge a share of good slices: listed, not judged."""
    sliced = slo(name="sliced", timeslices=Timeslices(window=60.0, target=95.0))
    for scope in (None, gate.Scope("issuance", frozenset({"token:client_credentials"}), {})):
        judged, skipped = gate.in_scope([slo(name="plain"), sliced], scope)
        assert [s.name for s in judged] == ["plain"]
        assert [(n.slo, n.reason) for n in skipped] == [("sliced", gate.TIMESLICES_NOT_GATED)]
    verdict = gate.verdict([], gate.in_scope([sliced], None)[1])
    assert verdict.exit_code == 3 and "nothing to gate" in verdict.reason


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
    assert check.state == "no_data" and check.message.endswith("token:client_credentials")
    stopped = Recorder(stopped="stopped early: …")
    assert gate.client_check(slo(), stopped).message.endswith("before the run stopped early")


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

    from support import write_target

    (tmp_path / "bad.yaml").write_text(BAD_GATE)
    out = tmp_path / "gate.json"
    # a target nothing answers for: the gate must be refused before it is even tried
    target = write_target(tmp_path / "target.yaml", {"issuer": "http://127.0.0.1:1",
        "clients": {"load": {"client_id": "c", "secret": {"env": "NEVER_READ"}}}})  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "tokenslo", "loadtest", "run", "--scenario", "mixed",
         "--duration", "5s", "--gate", str(tmp_path / gate_file), "--json", str(out),
         "--target", str(target)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert expected in done.stderr
    assert not out.exists()
