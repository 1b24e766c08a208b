"""experiments/token-replay.yaml through `tokenslo chaos run` and the real `chaos run`.

Against a real lab (gateway, IdP, Prometheus with the lab's security rules): the run
deviates on purpose (the replay alert fires and breaks the steady state), every
activity succeeded, the alert fired within the slack, and no token is in the journal
or the run record. Against a target without the lab's security rules (a bare real
Prometheus) or without a lab gateway it fails, saying why. The bundled game day takes
it with ``--all`` (tests/gameday/test_gameday_replay.py runs it as a game day).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from test_chaos_experiments import REPO, run_journal

from support import secret_file, write_target
from tokenslo.chaos import actions, runner
from tokenslo.errors import InputError
from tokenslo.gameday import plan as gp
from tokenslo.gameday.run import prepare

ALERT = "GatewayTokenReplaySuspected"
# A JWS compact serialization (any JWT the IdP issues starts with a base64url "{")
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def outputs(journal: dict, func: str) -> list:
    return [
        r.get("output")
        for r in journal["run"]
        if r.get("activity", {}).get("provider", {}).get("func") == func
    ]


@pytest.mark.lab
@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.prometheus
def test_a_replayed_token_fires_the_replay_alert_and_deviates(lab, tmp_path):
    code, journal = run_journal(lab, "token-replay", tmp_path)
    assert_deviated_by_alert(code, journal)
    (replay,) = outputs(journal, "replay_token")
    assert replay["owner_answers"] == [200, 200, 200] and replay["replay_answer"] == 200
    assert re.fullmatch(r"[0-9a-f]{12}", replay["token_sha256_12"])
    fired = alert_fired_within_slack(journal)
    bucket = fired["labels"]["token_bucket"]
    assert bucket in "0123456789abcdef" and fired["labels"]["severity"] == "ticket"
    # the gateway logged the replay by the jti's hash, in the alert's bucket
    log = (lab.state_dir / "logs" / "gateway.log").read_text()
    (logged,) = re.findall(r"token replay suspected jti_sha256=([0-9a-f]{12})", log)
    assert logged[0] == bucket
    # the token is nowhere in the journal or in the run's record on disk
    records = [json.dumps(journal)] + [
        p.read_text() for p in (lab.state_dir / "chaos-runs").glob("*.json")
    ]
    assert all(not JWT.search(text) for text in records)
    assert JWT.search(json.dumps({"t": "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln"}))


@pytest.mark.lab
@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.prometheus
def test_without_the_lab_security_rules_the_hypothesis_fails_saying_why(
    lab, tmp_path, prometheus_factory
):
    bare = prometheus_factory({"global": {"scrape_interval": "15s"}, "scrape_configs": []})
    bare.wait_ready()
    document = yaml.safe_load((lab.state_dir / "target.yaml").read_text())
    document["prometheus"] = {"url": bare.url}
    target = write_target(tmp_path / "target.yaml", document)
    journal_path = tmp_path / "journal.json"
    code = runner_main(target, journal_path)
    journal = json.loads(journal_path.read_text())
    assert code == 1 and journal["status"] == "failed"
    assert outputs(journal, "replay_token") == []  # nothing was replayed
    assert f"has no alert rule '{ALERT}'" in json.dumps(journal)


def assert_deviated_by_alert(code: int, journal: dict) -> None:
    """Every activity succeeded and the run deviated: its steady state (a security alert
    not firing) held before the method and was broken, the alert firing, after it."""
    failed = [r for r in journal["run"] + journal["rollbacks"] if r["status"] == "failed"]
    assert code == 1  # deviated: the steady state is broken, as the game day expects
    assert journal["status"] == "completed" and journal["deviated"] is True
    assert failed == []
    before, after = (
        journal["steady_states"]["before"]["probes"][0],
        journal["steady_states"]["after"]["probes"][0],
    )
    assert (before["output"], after["output"]) == ("inactive", "firing")


def alert_fired_within_slack(journal: dict) -> dict:
    """The one ``wait_for_named_alert`` output, checked: fired within the slack."""
    (fired,) = outputs(journal, "wait_for_named_alert")
    assert fired["fired"] and fired["within"], fired
    assert 0 < fired["detection_seconds"] <= fired["slack_seconds"]
    return fired


def runner_main(target: Path, journal: Path) -> int:
    from tokenslo.cli import main

    return main(
        ["chaos", "run", str(REPO / "experiments" / "token-replay.yaml"),
         "--target", str(target), "--journal", str(journal), "--timeout", "120"]
    )  # fmt: skip


def test_the_action_refuses_a_target_without_a_lab_gateway(tmp_path):
    """An external target (a real IdP behind the fault proxy, its own API): refused before
    any token is issued (the IdP here does not even answer)."""
    path = write_target(
        tmp_path / "target.yaml",
        {
            "issuer": "https://idp.example",
            "discovery_url": "http://127.0.0.1:1/",
            "clients": {"prober": {"client_id": "p", "secret": {"env": "P_SECRET"}}},
            "api": {"url": "http://127.0.0.1:3/api/resource"},
            "faults": {
                "admin_secret_file": str(secret_file(tmp_path / "secret", "s3cr3t\n")),
                "idp": {"kind": "proxy", "admin_url": "http://127.0.0.1:2"},
            },
        },
    )
    with pytest.raises(InputError, match="has no lab gateway") as raised:
        actions.replay_token(configuration={"tokenslo_target_file": str(path)})
    assert raised.value.exit_code == 2


def test_the_game_day_runs_it_with_all_and_expects_it_to_deviate():
    plan = gp.load_plan(None)
    assert "token-replay" not in {e.name for e in plan.selected(False)}
    (replay,) = [e for e in plan.selected(True) if e.name == "token-replay"]
    assert replay.expect == "deviated"
    (prepared,) = prepare((replay,), set(), plan)  # pre-checks and `chaos validate`
    assert prepared.expected_alerts == ()  # no SLO alert: only the security alert
    doc = runner.precheck(replay.file, {}, {})
    assert doc.data["steady-state-hypothesis"]["probes"][0]["tolerance"] == "inactive"
