"""Every experiment in experiments/ run with the real `chaos run` (through `tokenslo chaos
run`) against one real lab in compressed time (rules time scale 60, free ports).

Asserted per experiment: the exit code and the journal's status (the beyond-leeway
clock skew deviates, the others hold); every measured alert detection time is in
the journal and within the engine's theory + slack; afterwards nothing this run set
is left active (faults, clock offsets, unpublished keys, load processes).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from support import free_ports_lab_config, lab_up_on_free_ports
from tokenslo.chaos.journal import verdict
from tokenslo.cli import main
from tokenslo.lab.orchestrator import lab_down
from tokenslo.prometheus.process import pid_alive
from tokenslo.rules import conventions

pytestmark = [pytest.mark.lab, pytest.mark.chaos, pytest.mark.slow, pytest.mark.prometheus]

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 60

# Any order works: each case first waits until no page is pending or firing
# (``wait_pages_quiet``), whatever the case before it left burning. The cases run in
# three parts (xdist groups, tests/scheduling.py), each on a lab of its own when they
# land on different workers; the key part ends with the check that every key is
# published again.
IDP, KEYS, CLOCK = (pytest.mark.xdist_group(f"chaos-experiments:{part}")
                    for part in ("idp", "keys", "clock"))  # fmt: skip
CASES = [
    pytest.param("idp-outage", 0, ["token-issuance-availability"], marks=IDP),
    pytest.param("jwks-unavailable", 0, ["jwks-availability"], marks=KEYS),
    pytest.param("clock-skew", 0, [], marks=CLOCK),
    pytest.param("key-rotation-unpublished", 0, ["token-validation-success"], marks=KEYS),
    pytest.param("idp-outage-drop", 0, [], marks=IDP),
    pytest.param("jwks-rotation-while-down", 0, ["token-validation-success"], marks=KEYS),
    pytest.param("clock-skew-beyond-leeway", 1, ["token-validation-success"], marks=CLOCK),
    pytest.param("revocation-delay", 0, [], marks=CLOCK),
    pytest.param("jwks-truncated", 0, [], marks=KEYS),
    pytest.param("introspection-overload", 0, ["introspection-latency"], marks=IDP),
]


@pytest.fixture(scope="module")
def lab60(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("chaoslab") / "state"
    config = free_ports_lab_config(rules_time_scale=TIME_SCALE)
    try:
        yield lab_up_on_free_ports(config, state_dir)[0]
    finally:
        lab_down(state_dir)


def run_journal(lab, name: str, tmp_path: Path) -> tuple[int, dict]:
    journal = tmp_path / f"{name}.json"
    code = main(
        ["chaos", "run", str(REPO / "experiments" / f"{name}.yaml"),
         "--target", str(lab.state_dir / "target.yaml"), "--journal", str(journal),
         "--slo", str(REPO / "slo"), "--timeout", "240"]
    )  # fmt: skip
    return code, json.loads(journal.read_text())


def wait_pages_quiet(lab, timeout: float = 240.0) -> None:
    """Wait until no burn-rate page is pending or firing. ``wait_for_alert`` counts only
    alerts that became active after its injection, so a page still active from the case
    before (the beyond-leeway skew deviates on purpose) would hide this case's page."""
    url = lab.urls["prometheus"] + "/api/v1/alerts"

    def pages() -> list[dict]:
        alerts = requests.get(url, timeout=5).json()["data"]["alerts"]
        return [
            a
            for a in alerts
            if a["labels"].get("alertname") == conventions.BURN_ALERT
            and a["labels"].get(conventions.SEVERITY_LABEL) == "page"
        ]

    deadline = time.monotonic() + timeout
    while active := pages():
        assert time.monotonic() < deadline, f"pages still active after {timeout:g}s: {active}"
        time.sleep(0.5)


def detections(journal: dict) -> list[dict]:
    return [
        r["output"]
        for r in journal["run"]
        if r.get("activity", {}).get("provider", {}).get("func") == "wait_for_alert"
    ]


def assert_nothing_left(lab) -> None:
    for component in ("idp", "gateway"):
        active = lab.admin(component).list_faults()
        assert active["faults"] == [] and active["clock"] is None, (component, active)
    runs = sorted((lab.state_dir / "chaos-runs").glob("*[0-9a-f].json"))
    record = json.loads(runs[-1].read_text())
    for change in record["changes"]:
        assert change["cleared_at"] is not None, change
    for process in record["processes"].values():
        assert not pid_alive(process["pid"]), process


@pytest.mark.parametrize("name, exit_code, paged", CASES, ids=[c.values[0] for c in CASES])
def test_experiment_runs_with_the_expected_outcome(lab60, tmp_path, name, exit_code, paged):
    wait_pages_quiet(lab60)
    code, journal = run_journal(lab60, name, tmp_path)
    failed = [r for r in journal["run"] + journal["rollbacks"] if r["status"] == "failed"]
    assert code == exit_code, verdict(journal).reasons
    assert journal["status"] == "completed"
    assert journal["deviated"] is (exit_code == 1)
    assert failed == []
    measured = detections(journal)
    assert sorted(m["slo"] for m in measured) == sorted(paged)
    for m in measured:
        assert m["fired"] and m["within"], m
        assert 0 < m["detection_seconds"] <= m["theory_seconds"] + m["slack_seconds"]
        assert m["time_scale"] == pytest.approx(TIME_SCALE)
    assert_nothing_left(lab60)


@KEYS
def test_unpublished_key_rotation_left_every_signing_key_published(lab60):
    keys = lab60.admin("idp").list_keys()
    assert [k for k in keys["keys"] if not k["published"]] == []
    jwks = requests.get(lab60.urls["idp"] + "/jwks", timeout=5).json()
    assert keys["current_kid"] in {k["kid"] for k in jwks["keys"]}
