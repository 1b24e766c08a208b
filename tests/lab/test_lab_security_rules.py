"""The lab's security alert rules: shipped with the lab, loaded beside the SLO rules,
valid for ``promtool check rules`` and firing on the first privilege-escalation attempt,
the first suspected token replay and the first token wider than its client's
registration (``promtool test rules``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from tokenslo.lab.config import load_lab_config
from tokenslo.lab.configs import SECURITY_RULES, SECURITY_RULES_FILE, check_rules, rule_files
from tokenslo.prometheus.process import run_promtool
from tokenslo.rules.promtool_tests import alert_check, promtool_file, promtool_group

ALERT = "IdPPrivilegeEscalationAttempt"
SERIES = 'idp_privilege_escalation_attempts_total{client_id="loadtest",kind="scope_not_registered"}'
REPLAY_ALERT = "GatewayTokenReplaySuspected"
REPLAY_SERIES = 'gateway_token_replay_suspected_total{token_bucket="b"}'
SCOPE_ALERT = "GatewayTokenScopeBeyondRegistration"


def _rules() -> dict[str, dict]:
    (group,) = yaml.safe_load(SECURITY_RULES.read_text(encoding="utf-8"))["groups"]
    assert group["name"] == "tokenslo-lab-security"
    return {rule["alert"]: rule for rule in group["rules"]}


def _rule(name: str = ALERT) -> dict:
    return _rules()[name]


def test_the_lab_loads_the_security_rules_even_without_slos(tmp_path):
    config = replace(load_lab_config(), slo_paths=(str(tmp_path / "none"),))
    files = rule_files(config, [])
    assert list(files) == [SECURITY_RULES_FILE]
    assert files[SECURITY_RULES_FILE] == SECURITY_RULES.read_text(encoding="utf-8")
    assert set(_rules()) == {ALERT, REPLAY_ALERT, SCOPE_ALERT}
    for rule in _rules().values():
        assert rule["labels"] == {"severity": "ticket"}
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])


def test_the_security_rules_pass_promtool_check(tmp_path):
    config = load_lab_config()
    check_rules({SECURITY_RULES_FILE: SECURITY_RULES.read_text()}, config, tmp_path)


def test_the_first_attempt_fires_and_a_quiet_window_resolves(tmp_path: Path):
    """One sample a minute: 0 for 5 minutes, then 1 from minute 6 on. ``increase`` over
    5m sees 0 → 1 from minute 6 until minute 10; from minute 11 the window holds only 1s."""
    (tmp_path / "rules.yml").write_text(SECURITY_RULES.read_text(encoding="utf-8"))
    rule = _rule()
    fired = {
        "exp_labels": {
            "client_id": "loadtest",
            "kind": "scope_not_registered",
            "severity": "ticket",
        },
        "exp_annotations": {
            **rule["annotations"],
            "summary": (
                "IdP refused a privilege-escalation attempt by client loadtest"
                " (scope_not_registered)"
            ),
        },
    }
    checks = [
        alert_check(300, ALERT, []),
        alert_check(360, ALERT, [fired]),
        alert_check(600, ALERT, [fired]),
        alert_check(720, ALERT, []),
    ]
    group = promtool_group("first attempt", 60, {SERIES: "0x5 1x10"}, checks)
    test = promtool_file(["rules.yml"], "1m", [group])
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_first_suspected_replay_fires_and_a_quiet_window_resolves(tmp_path: Path):
    """Same timeline as the escalation alert: 0 for 5 minutes, then one replay counted."""
    quiet = 'gateway_token_replay_suspected_total{token_bucket="c"}'
    summary = "Gateway saw a verified access token from more sources than allowed (token_bucket b)"
    _first_event_fires(tmp_path, REPLAY_ALERT, REPLAY_SERIES, quiet, {"token_bucket": "b"}, summary)


def test_the_first_token_beyond_its_registration_fires_and_a_quiet_window_resolves(
    tmp_path: Path,
):
    """Same timeline: one over-scoped token of ``prober``; ``loadtest`` stays quiet."""
    summary = "Gateway saw a verified token of client prober with scopes beyond its registration"
    _first_event_fires(
        tmp_path,
        SCOPE_ALERT,
        'gateway_scope_beyond_registration_total{client_id="prober"}',
        'gateway_scope_beyond_registration_total{client_id="loadtest"}',
        {"client_id": "prober"},
        summary,
    )


def _first_event_fires(
    tmp_path: Path, alert: str, series: str, quiet: str, labels: dict, summary: str
) -> None:
    """``series`` is 0 for 5 minutes, then 1 (``quiet`` stays 0): the alert fires from
    minute 6, with ``labels`` and ``summary``, and resolves once the window holds only 1s."""
    (tmp_path / "rules.yml").write_text(SECURITY_RULES.read_text(encoding="utf-8"))
    fired = {
        "exp_labels": {**labels, "severity": "ticket"},
        "exp_annotations": {**_rule(alert)["annotations"], "summary": summary},
    }
    checks = [
        alert_check(300, alert, []),
        alert_check(360, alert, [fired]),
        alert_check(600, alert, [fired]),
        alert_check(720, alert, []),
    ]
    group = promtool_group(f"first {alert}", 60, {series: "0x5 1x10", quiet: "0x15"}, checks)
    test = promtool_file(["rules.yml"], "1m", [group])
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False))
    result = run_promtool("test", "rules", "test.yml", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
