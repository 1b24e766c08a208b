"""JUnit, JSON, Markdown and the table say what the checks say."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from test_load_gate import slo

from tokenslo.core.model import LatencySLI
from tokenslo.engine.evaluator import WindowCounts
from tokenslo.load import gate, outputs
from tokenslo.load.recorder import Recorder
from tokenslo.spec.loader import load_paths

RUN = outputs.RunInfo("mixed", 20, 10.0, 30.0, "http://127.0.0.1:1", 100.0, 130.0)


def _checks():
    rec = Recorder()
    for _ in range(3000):
        rec.record("token:client_credentials", 2.0, None, start=100.0)
    for _ in range(10):
        rec.record("token:client_credentials", 2.0, "503", start=120.0)
    slos = [
        slo(name="avail"),
        slo(name="lat", objective=95, sli=LatencySLI("m", 0.3)),
        slo(name="refresh", requests=("token:refresh_token",)),
    ]
    checks = gate.client_checks(slos, rec)
    checks.append(gate.server_check(slos[1], WindowCounts(0.0, 100.0), 30.0))
    return checks, rec


def test_junit_has_one_case_per_check_and_marks_failures_and_errors():
    checks, _rec = _checks()
    verdict = gate.verdict(checks)
    root = ET.fromstring(outputs.junit(checks, verdict, RUN))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"avail client", "lat client", "refresh client", "lat server"}
    assert {c.get("classname") for c in cases.values()} == {"tokenslo.gate.idp"}
    failure = cases["avail client"].find("failure")
    assert failure is not None and "< objective 99.9%" in failure.get("message")
    assert cases["refresh client"].find("error").get("type") == "no_data"
    assert cases["lat client"].find("failure") is None and cases["lat client"].find("error") is None
    assert root.find("testsuite").get("failures") == "1"
    assert root.find("testsuite").get("errors") == "1"
    assert not list(root.iter("skipped"))


def test_junit_case_per_gated_slo_of_the_repo():
    slos = load_paths([Path(__file__).resolve().parents[2] / "slo"])
    checks = gate.client_checks(slos, Recorder())
    root = ET.fromstring(outputs.junit(checks, gate.verdict(checks), RUN))
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == [f"{s.name} client" for s in slos if s.loadtest]


def test_json_and_markdown_carry_verdict_and_rule():
    checks, rec = _checks()
    verdict = gate.verdict(checks)
    data = json.loads(outputs.to_json(checks, verdict, RUN, rec))
    assert data["verdict"]["exit_code"] == 1 and data["verdict"]["result"] == "failed"
    assert data["run"]["total_requests"] == 3010 and data["run"]["window_seconds"] == 30.0
    assert {c["name"]: c["state"] for c in data["checks"]}["refresh client"] == "no_data"
    assert data["requests"]["token:client_credentials"]["errors"] == {"503": 10}
    md = outputs.markdown(checks, verdict, RUN, rec)
    assert "| `avail` | client | availability | 3010/3000 |" in md
    assert "rule of three" in md and "failed" in md.splitlines()[0]
    text = outputs.table(checks, verdict)
    assert "gate failed: objective breached: avail client" in text
    assert "rule of three" in text


def test_every_output_shows_reasons_the_stop_and_what_was_not_gated():
    checks, rec = _checks()
    skipped = (gate.NotGated("gw", "gateway", "scenario issuance sends no api:resource requests"),)
    run = replace(RUN, stopped="stopped early: the first 20 …", not_gated=skipped)
    verdict = gate.verdict(checks, skipped)
    text = outputs.table(checks, verdict, run)
    assert (
        "avail client: 99.668% succeeded (10 of 3010 not) < objective 99.9%; failures: 503 ×10"
        in text
    )
    assert "stopped early: the first 20" in text
    assert "gw: scenario issuance sends no api:resource requests" in text
    failure = ET.fromstring(outputs.junit(checks, verdict, run)).find(
        ".//testcase[@name='avail client']/failure"
    )
    assert "failures: 503 ×10" in failure.get("message") and "stopped early" in failure.text
    props = {
        p.get("name"): p.get("value")
        for p in ET.fromstring(outputs.junit(checks, verdict, run)).iter("property")
    }
    assert props["not_gated.gw"].startswith("scenario issuance") and props["stopped"]
    md = outputs.markdown(checks, verdict, run, rec)
    assert "failures: 503 ×10" in md and "- `gw`: scenario issuance" in md
    assert "**stopped early: the first 20 …**" in md
    data = json.loads(outputs.to_json(checks, verdict, run, rec))
    assert data["run"]["not_gated"][0]["slo"] == "gw" and data["run"]["stopped"]
    assert {c["name"]: c["reasons"] for c in data["checks"]}["avail client"] == [["503", 10]]


def test_markdown_escapes_what_a_target_or_idp_put_in_the_reasons():
    rec = Recorder()
    run = replace(RUN, stopped="stopped: <img src=x onerror=alert(1)> | *x*")
    md = outputs.markdown([], gate.verdict([]), run, rec)
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "\\| \\*x\\*" in md  # no table cell or emphasis injected
