"""JUnit, JSON, Markdown and the table say what the checks say."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from test_load_gate import slo

from tokenslo.engine.evaluator import WindowCounts
from tokenslo.load import gate, outputs
from tokenslo.load.recorder import Recorder
from tokenslo.spec.loader import load_paths
from tokenslo.spec.model import LatencySLI

RUN = outputs.RunInfo("mixed", 20, 10.0, 30.0, "http://127.0.0.1:1", 100.0, 130.0)


def _checks():
    rec = Recorder()
    for _ in range(3000):
        rec.record("token:client_credentials", 2.0, None, start=100.0)
    for _ in range(10):
        rec.record("token:client_credentials", 2.0, "HTTP 503", start=120.0)
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
    assert data["requests"]["token:client_credentials"]["errors"] == {"HTTP 503": 10}
    md = outputs.markdown(checks, verdict, RUN, rec)
    assert "| `avail` | client | availability | 3010/3000 |" in md
    assert "rule of three" in md and "failed" in md.splitlines()[0]
    text = outputs.table(checks, verdict)
    assert "gate failed: objective breached: avail client" in text
    assert "rule of three" in text
