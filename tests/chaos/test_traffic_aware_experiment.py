"""A chaos experiment on a lab whose token-issuance SLO pages with traffic-aware burn
rates (rules time scale 60, free ports): a partial IdP outage (1 % of token requests
answer 503) pages, within the theory + slack that ``wait_for_alert`` measures against
the moving threshold, reads as paging in ``slo_burn_rate``'s page ratio, and resolves
within the theory after the fault is cleared.

1 % is below the static 1h/5m threshold (14.4 × 0.1 % = 1.44 %): judged against the
static line the SLI never holds the condition, so the page would count as unexplained.
In a lab younger than its 30d period (12 h scaled) the period holds only the lab's
whole traffic, so N_period / N_long is small and the traffic-aware threshold is far
below the static one: the page fires on the first few failures.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from support import lab_up_on_free_ports, with_free_ports
from tokenslo.chaos.journal import verdict
from tokenslo.cli import main
from tokenslo.lab.config import load_lab_config
from tokenslo.lab.orchestrator import lab_down

pytestmark = [pytest.mark.lab, pytest.mark.chaos, pytest.mark.slow, pytest.mark.prometheus]

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 60
SLO = "token-issuance-availability"
PROBES = "tokenslo.chaos.probes"
ACTIONS = "tokenslo.chaos.actions"


def traffic_aware_slos(into: Path) -> Path:
    """A copy of slo/ whose issuance availability SLO pages traffic-aware (counting with
    increase(): its threshold compares event counts)."""
    shutil.copytree(REPO / "slo", into)
    path = into / "idp.yaml"
    doc = yaml.safe_load(path.read_text())
    (issuance,) = [s for s in doc["slos"] if s["name"] == SLO]
    issuance.setdefault("alerting", {})["burn_rate"] = "traffic-aware"
    events = issuance["sli"]["events"]  # counts, as a traffic-aware threshold needs
    for kind in ("bad", "total"):
        events[kind] = events[kind].replace("rate(", "increase(")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return into


def python(kind: str, name: str, module: str, func: str, **arguments) -> dict:
    return {"type": kind, "name": name,
            "provider": {"type": "python", "module": module, "func": func,
                         "arguments": arguments}}  # fmt: skip


def partial_outage_experiment(path: Path) -> Path:
    """1 % of token requests fail with 503 under 40 token requests/s (loadgen)."""
    experiment = {
        "version": "1.0.0",
        "title": "partial IdP outage on a traffic-aware SLO",
        "description": "1 % of token requests answer 503",
        "tags": ["tokenslo"],
        "runtime": {"rollbacks": {"strategy": "always"}},
        "configuration": {
            "tokenslo_target_file": {"type": "env", "key": "TOKENSLO_TARGET_FILE", "default": ""},
            "tokenslo_slo_paths": {"type": "env", "key": "TOKENSLO_SLO_PATHS", "default": ""},
            "tokenslo_time_scale": {"type": "env", "key": "TOKENSLO_TIME_SCALE", "default": ""},
        },  # fmt: skip
        "steady-state-hypothesis": {"title": "nothing", "probes": []},
        "method": [
            {
                **python(
                    "action",
                    "load",
                    ACTIONS,
                    "start_background_load",
                    duration=100,
                    driver="loadgen",
                    rate=40,
                ),
                "pauses": {"after": 4},
            },
            python(
                "action",
                "one-percent-503",
                ACTIONS,
                "inject_http_fault",
                target="idp",
                endpoint="token_endpoint",
                effect="status",
                status=503,
                probability=0.01,
                expires_in=70,
            ),
            python(
                "probe",
                "page-fires-within-theory",
                PROBES,
                "wait_for_alert",
                slo=SLO,
                severity="page",
                long_window="1h",
                error_rate=0.01,
                timeout=60,
            ),
            python("probe", "burn-while-paging", PROBES, "slo_burn_rate", slo=SLO, window="1h"),
            python("action", "end-outage", ACTIONS, "clear_recorded_faults"),
            python(
                "probe",
                "page-resolves-within-theory",
                PROBES,
                "wait_for_alert_resolved",
                slo=SLO,
                severity="page",
                long_window="1h",
                error_rate=0.01,
                timeout=60,
            ),
        ],  # fmt: skip
        "rollbacks": [
            python("action", "clear", ACTIONS, "clear_recorded_faults"),
            python("action", "stop-load", ACTIONS, "stop_background_load"),
        ],
    }
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def aware_lab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("awarelab")
    slos = traffic_aware_slos(root / "slo")
    config = with_free_ports(
        replace(load_lab_config(), slo_paths=(str(slos),), rules_time_scale=TIME_SCALE)
    )
    try:
        yield lab_up_on_free_ports(config, root / "state")[0], slos
    finally:
        lab_down(root / "state")


def outputs(journal: dict, func: str) -> list[dict]:
    return [
        r["output"]
        for r in journal["run"]
        if r.get("activity", {}).get("provider", {}).get("func") == func
    ]


def test_a_partial_outage_pages_a_traffic_aware_slo_within_its_moving_theory(aware_lab, tmp_path):
    lab, slos = aware_lab
    experiment = partial_outage_experiment(tmp_path / "partial-outage.yaml")
    journal_path = tmp_path / "journal.json"
    code = main(
        ["chaos", "run", str(experiment), "--target", str(lab.state_dir / "target.yaml"),
         "--journal", str(journal_path), "--slo", str(slos), "--timeout", "240"]
    )  # fmt: skip
    journal = json.loads(journal_path.read_text())
    assert code == 0, verdict(journal).reasons
    (fired,) = outputs(journal, "wait_for_alert")
    assert fired["fired"] and fired["within"], fired
    assert 0 < fired["detection_seconds"] <= fired["theory_seconds"] + fired["slack_seconds"]
    # the textbook (a full period of steady traffic: the static line) never fires at 1 %
    assert fired["long_window"] == "1h" and fired["steady_theory_seconds"] is None
    # the prediction counted the period's events (the lab's traffic so far: the load
    # began 4 s before the injection), which only a traffic-aware threshold needs
    held = fired["held_at_injection"]
    assert held["period_events"] > 0 and held["1m"]["events"] > 0
    # while it pages, the burn-rate probe judges against the same moving line: the
    # young lab's page factor c × N_period / N_long is far below the static 6 (6h page),
    # so page_ratio (what steady-state hypotheses bound by 1) says "paging"
    (burn,) = outputs(journal, "slo_burn_rate")
    assert 0 < burn["page_factor"] < 1 and burn["page_ratio"] > 1, burn
    (resolved,) = outputs(journal, "wait_for_alert_resolved")
    assert resolved["resolved"] and resolved["within"], resolved
