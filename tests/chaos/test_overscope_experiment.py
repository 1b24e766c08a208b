"""experiments/over-scoped-token.yaml (guide F7, "too wide") through `tokenslo chaos run`
and the real `chaos run`.

Against a real lab (IdP, gateway, Prometheus with the lab's security rules): first with
a target whose IdP is behind a fault proxy (the profile action refuses: no wide token is
issued and nothing is counted, the prober's normal token still served), then as shipped:
the run deviates on purpose (the scope-beyond-registration alert fires for the prober
and breaks the steady state), every activity succeeded, the alert fired within the
slack, the gateway counted the prober and logged the extra scope, and no token is in
the journal. The order matters: once fired, the alert stays up for 5 minutes. The
bundled game day takes it with ``--all``.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_chaos_experiments import REPO, run_journal
from test_replay_experiment import (
    JWT,
    alert_fired_within_slack,
    assert_deviated_by_alert,
    outputs,
)

from support import write_target
from tokenslo.cli import main
from tokenslo.gameday import plan as gp
from tokenslo.gameday.run import prepare

NAME = "over-scoped-token"
ALERT = "GatewayTokenScopeBeyondRegistration"
COUNTER = "gateway_scope_beyond_registration_total"


def beyond_registration(lab) -> dict[str, float]:
    """The gateway's counter by client_id, scraped from the running lab gateway."""
    text = requests.get(lab.urls["gateway"] + "/metrics", timeout=5).text
    return {
        sample.labels["client_id"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == COUNTER
    }


@pytest.mark.lab
@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.prometheus
def test_1_a_target_whose_idp_is_not_the_labs_is_refused_and_counts_nothing(lab, tmp_path):
    before = beyond_registration(lab)
    assert before == {"loadtest": 0, "gateway": 0, "prober": 0, "opaque-client": 0}
    document = yaml.safe_load((lab.state_dir / "target.yaml").read_text())
    document["faults"]["idp"] = {"kind": "proxy", "admin_url": "http://127.0.0.1:2"}
    target = write_target(tmp_path / "target.yaml", document)
    journal_path = tmp_path / "journal.json"
    main(
        ["chaos", "run", str(REPO / "experiments" / f"{NAME}.yaml"), "--target", str(target),
         "--journal", str(journal_path), "--timeout", "120"]
    )  # fmt: skip
    journal = json.loads(journal_path.read_text())
    (action,) = [r for r in journal["run"] if r["activity"]["name"].startswith("issue-prober")]
    assert action["status"] == "failed"
    assert "set_token_profile needs the lab IdP" in json.dumps(action)
    assert outputs(journal, "remembered_token_validates") == [True]  # a normal token: served
    assert beyond_registration(lab) == before  # ... and not counted


@pytest.mark.lab
@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.prometheus
def test_2_an_over_scoped_token_fires_the_alert_for_its_client_and_deviates(lab, tmp_path):
    code, journal = run_journal(lab, NAME, tmp_path)
    assert_deviated_by_alert(code, journal)
    (profile,) = outputs(journal, "set_token_profile")
    assert (profile["client_id"], profile["scope"]) == ("prober", "api.read api.write")
    (remembered,) = outputs(journal, "remember_token")
    assert re.fullmatch(r"[0-9a-f]{12}", remembered["token_sha256_12"])
    fired = alert_fired_within_slack(journal)
    assert fired["labels"]["client_id"] == "prober" and fired["labels"]["severity"] == "ticket"
    counts = beyond_registration(lab)
    assert counts["prober"] >= 3 and counts["loadtest"] == 0  # three calls with the token
    log = (lab.state_dir / "logs" / "gateway.log").read_text()
    assert "scope beyond registration client_id=prober extra_scopes=api.write" in log
    records = [json.dumps(journal)] + [
        p.read_text() for p in (lab.state_dir / "chaos-runs").glob("*.json")
    ]
    assert all(not JWT.search(text) for text in records)
    assert not JWT.search(log)


def test_the_game_day_runs_it_with_all_and_expects_it_to_deviate():
    plan = gp.load_plan(None)
    assert NAME not in {e.name for e in plan.selected(False)}
    (wide,) = [e for e in plan.selected(True) if e.name == NAME]
    assert wide.expect == "deviated"
    (prepared,) = prepare((wide,), set(), plan)  # pre-checks and `chaos validate`
    assert prepared.expected_alerts == ()  # no SLO alert: only the security alert
