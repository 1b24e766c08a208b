"""Lab config parsing and the generated configs (pure; no processes)."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tokenslo.cli import main
from tokenslo.errors import InputError
from tokenslo.lab.config import load_lab_config
from tokenslo.lab.configs import (
    RULES_FILE,
    alertmanager_config,
    check_pass_through,
    check_rules,
    idp_config,
    prometheus_config,
    rule_files,
)
from tokenslo.lab.credentials import (
    CREDENTIALS_FILE,
    WEBHOOK_SECRET_FILE,
    clients_registry,
    ensure_admin_secret,
    ensure_credentials,
    ensure_secret,
)
from tokenslo.lab.idp.clients import hash_secret
from tokenslo.lab.ports import check_ports
from tokenslo.lab.state import Component
from tokenslo.prometheus.process import free_port, proc_start_time


def write(tmp_path, text: str):
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_defaults_match_the_contract():
    config = load_lab_config()
    assert dict(config.ports.items()) == {
        "idp": 9400,
        "gateway": 9401,
        "webhook": 9402,
        "prometheus": 9490,
        "alertmanager": 9493,
    }
    assert config.scrape_interval == 1.0
    assert config.evaluation_interval == 1.0
    assert config.slo_paths == ("slo/",)
    assert config.rules_time_scale == 1.0


def test_user_file_overrides_key_by_key(tmp_path):
    path = write(
        tmp_path,
        "ports:\n  idp: 19400\nprometheus:\n  scrape_interval: 5s\ngateway:\n  leeway: 5\n",
    )
    config = load_lab_config(path)
    assert config.ports.idp == 19400
    assert config.ports.gateway == 9401  # kept from the defaults
    assert config.scrape_interval == 5.0
    assert config.evaluation_interval == 1.0
    assert config.gateway["leeway"] == 5
    assert config.gateway["audience"] == "api://lab"


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        ("ports:\n  idp: 70000\n", 2, "ports.idp"),
        ("ports:\n  idp: 9401\n", 2, "ports.idp"),  # clashes with the gateway default
        ("ports:\n  web: 1\n", 2, "ports.web"),
        ("\nprometheus:\n  scrape_interval: fast\n", 3, "prometheus.scrape_interval"),
        ("rules_time_scale: 0.5\n", 1, "rules_time_scale"),
        ("colour: red\n", 1, "colour"),
        ("idp:\n  port: 1234\n", 2, "idp.port"),
        ("gateway:\n  issuer: http://x\n", 2, "gateway.issuer"),
        ("slo_paths: 3\n", 1, "slo_paths"),
    ],
)
def test_bad_config_names_file_line_and_field(tmp_path, text, line, field):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_lab_config(path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), line, field)


def test_bad_config_via_cli_is_one_line_exit_2(tmp_path, capsys):
    path = write(tmp_path, "ports:\n  idp: nope\n")
    assert main(["lab", "up", "--config", str(path), "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"{path}:2: ports.idp:" in err
    assert not (tmp_path / "s").exists()


def test_bad_gateway_pass_through_fails_before_start(tmp_path):
    config = load_lab_config(write(tmp_path, "gateway:\n  allowed_algs: [HS256]\n"))
    with pytest.raises(InputError, match="HS256"):
        check_pass_through(config, tmp_path)


def test_prometheus_config_scrapes_every_second_and_alerts_locally():
    config = load_lab_config().with_ports(prober=9500)
    prom = prometheus_config(config)
    assert prom["global"]["scrape_interval"] == "1s"
    assert prom["global"]["evaluation_interval"] == "1s"
    assert prom["global"]["scrape_timeout"] == "1s"
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]}
    assert jobs == {
        "idp": ["127.0.0.1:9400"],
        "gateway": ["127.0.0.1:9401"],
        "tokenslo-webhook": ["127.0.0.1:9402"],
        "prober": ["127.0.0.1:9500"],
    }
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["127.0.0.1:9493"]


def test_alertmanager_routes_everything_to_the_webhook():
    config = load_lab_config().with_ports(webhook=9999)
    am = alertmanager_config(config)
    assert am["route"]["group_wait"] == "1s"
    receiver = am["receivers"][0]
    assert receiver["name"] == am["route"]["receiver"]
    assert receiver["webhook_configs"] == [
        {"url": "http://127.0.0.1:9999/alerts", "send_resolved": True}
    ]


def test_alertmanager_authenticates_to_the_webhook_with_a_file(tmp_path):
    """The installed Alertmanager accepts the keys (``amtool check-config``); the secret
    itself stays in its 0600 file and never enters alertmanager.yml."""
    secret_file = ensure_secret(tmp_path, WEBHOOK_SECRET_FILE)
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    am = alertmanager_config(load_lab_config(), secret_file)
    webhook = am["receivers"][0]["webhook_configs"][0]
    assert webhook["http_config"] == {
        "authorization": {"type": "Bearer", "credentials_file": str(secret_file)}
    }
    config_path = tmp_path / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(am))
    assert secret_file.read_text().strip() not in config_path.read_text()
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool (Debian prometheus-alertmanager) is not installed")
    check = subprocess.run(
        [amtool, "check-config", str(config_path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_credentials_are_private_stable_and_only_hashed_in_the_registry(tmp_path):
    creds = ensure_credentials(tmp_path)
    assert set(creds) == {"loadtest", "gateway", "prober", "opaque-client"}
    path = tmp_path / CREDENTIALS_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_credentials(tmp_path) == creds  # generated once
    registry = clients_registry(creds, "api://lab")
    text = yaml.safe_dump(registry)
    assert not any(secret in text for secret in creds.values())
    by_id = {c["client_id"]: c for c in registry["clients"]}
    assert by_id["loadtest"]["secret_sha256"] == hash_secret(creds["loadtest"])
    assert by_id["loadtest"]["grant_types"] == ["client_credentials", "refresh_token"]
    assert by_id["opaque-client"]["token_format"] == "opaque"
    assert by_id["gateway"]["introspect"] is True


def test_the_lab_idp_keeps_its_revocations_in_the_state_dir(tmp_path):
    idp = idp_config(load_lab_config(), tmp_path)
    assert idp["revocations_file"] == str(tmp_path / "idp-revocations.json")
    check_pass_through(load_lab_config(), tmp_path)  # the IdP config accepts the key


def test_admin_secret_is_private_and_kept(tmp_path):
    path = ensure_admin_secret(tmp_path)
    secret = path.read_text()
    assert len(secret.strip()) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_admin_secret(tmp_path).read_text() == secret


def test_proc_start_time_tells_processes_apart():
    mine = proc_start_time(os.getpid())
    assert mine is not None and mine > 0
    assert proc_start_time(1) != mine or os.getpid() == 1
    assert proc_start_time(2**22 + 12345) is None


def test_recycled_pid_is_not_ours():
    component = Component(
        name="idp",
        pid=os.getpid(),
        start_time=(proc_start_time(os.getpid()) or 0) + 1,
        port=1,
        url="",
        health_url="",
        log="",
    )
    assert component.is_ours_and_alive() is False


def test_status_without_a_lab_exits_3(tmp_path, capsys):
    assert main(["lab", "status", "--state-dir", str(tmp_path)]) == 3
    assert "not running" in capsys.readouterr().err
    assert main(["lab", "down", "--state-dir", str(tmp_path)]) == 0


def test_slo_rules_follow_the_time_scale(tmp_path):
    repo_slo = str(Path(__file__).resolve().parents[2] / "slo")
    base = replace(load_lab_config(), slo_paths=(repo_slo, str(tmp_path / "missing")))
    notes: list[str] = []
    real_time = rule_files(base, notes)[RULES_FILE]
    assert notes == [f"SLO path {tmp_path / 'missing'} not found; no rules from it"]
    scaled = rule_files(replace(base, rules_time_scale=60), [])[RULES_FILE]
    assert real_time != scaled
    check_rules({RULES_FILE: scaled}, base, tmp_path / "check")  # promtool-valid


def test_a_time_scaled_lab_notes_the_calendar_records_it_leaves_out(tmp_path):
    slo_dir = tmp_path / "slo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "slo", slo_dir)
    path = slo_dir / "idp.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["slos"][0]["calendar"] = {"period": "month"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    name = doc["slos"][0]["name"]
    base = replace(load_lab_config(), slo_paths=(str(slo_dir),))
    real_notes: list[str] = []
    real_time = rule_files(base, real_notes)[RULES_FILE]
    assert real_notes == [] and f"tokenslo-calendar-{name}" in real_time
    notes: list[str] = []
    scaled = rule_files(replace(base, rules_time_scale=60), notes)[RULES_FILE]
    assert "tokenslo-calendar-" not in scaled
    assert notes == [
        f"SLO {name}: calendar periods are dates, which a time-scaled rehearsal does not"
        " have; no period-to-date records (slo status still counts the period)"
    ]


def test_port_in_use_names_the_config_key(tmp_path):
    config = load_lab_config(write(tmp_path, "ports:\n  webhook: 19999\n"))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        with pytest.raises(InputError) as info:
            free = {k: free_port() for k in ("idp", "gateway", "prometheus")}
            check_ports(config.with_ports(alertmanager=busy, **free))
    assert info.value.field == "ports.alertmanager"
    assert f"port {busy} is already in use" in str(info.value)
