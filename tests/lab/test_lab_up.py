"""``lab up|down|status`` with real processes: IdP, gateway, webhook, Alertmanager, Prometheus."""

from __future__ import annotations

import json
import os
import signal
import socket

import pytest
import requests

from support import lab_config_file
from tokenslo.cli import main
from tokenslo.errors import UnavailableError
from tokenslo.lab import orchestrator, processes
from tokenslo.lab.orchestrator import lab_down, lab_status, lab_up
from tokenslo.lab.state import STATE_FILE
from tokenslo.prometheus.process import pid_alive, proc_start_time
from tokenslo.signals import interrupts_raise

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

COMPONENTS = {"webhook", "idp", "gateway", "alertmanager", "prometheus"}


def issue(lab, client: str = "loadtest") -> str:
    secret = lab.credentials()[client]
    response = requests.post(
        lab.urls["idp"] + "/token",
        data={"grant_type": "client_credentials"},
        auth=(client, secret),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_up_starts_every_component_healthy(lab):
    assert set(lab.components) == COMPONENTS
    assert len({c.pid for c in lab.components.values()}) == 5
    for component in lab.components.values():
        assert pid_alive(component.pid)
        assert component.start_time == proc_start_time(component.pid)
        assert requests.get(component.health_url, timeout=5).status_code == 200
    statuses = lab_status(lab.state_dir)
    assert [(s.name, s.state) for s in statuses] == [
        (name, "healthy") for name in ("webhook", "idp", "gateway", "alertmanager", "prometheus")
    ]


def test_idp_metadata_token_and_gateway_call(lab):
    meta = requests.get(
        lab.urls["idp"] + "/.well-known/oauth-authorization-server", timeout=5
    ).json()
    assert meta["issuer"] == lab.issuer
    assert meta["token_endpoint"] == lab.issuer + "/token"
    token = issue(lab)
    response = requests.get(
        lab.urls["gateway"] + "/api/resource",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["client_id"] == "loadtest"
    unauthenticated = requests.get(lab.urls["gateway"] + "/api/resource", timeout=5)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")


def test_opaque_client_gets_a_reference_token_the_gateway_accepts(lab):
    token = issue(lab, "opaque-client")
    assert token.count(".") == 0
    response = requests.get(
        lab.urls["gateway"] + "/api/resource",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert response.status_code == 200


def test_prometheus_scrapes_idp_and_gateway(lab, wait_until):
    url = lab.urls["prometheus"] + "/api/v1/targets"

    def jobs_up():
        targets = requests.get(url, timeout=5).json()["data"]["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in targets}
        jobs = ("idp", "gateway", "tokenslo-webhook")
        return health if all(health.get(job) == "up" for job in jobs) else None

    # The webhook's first scrape can come a moment after the services' (health
    # "unknown" until then), so wait for all three rather than racing it.
    health = wait_until(jobs_up, timeout=20)
    assert health["tokenslo-webhook"] == "up"


def test_slo_rules_are_loaded(lab):
    groups = requests.get(lab.urls["prometheus"] + "/api/v1/rules", timeout=5).json()["data"]
    names = {g["name"] for g in groups["groups"]}
    assert "tokenslo-lab-test" in names
    assert any(name.startswith("tokenslo-slo-") for name in names), names


def _running_config(lab, lab_config):
    """The config the running lab really uses (its ports may have been re-picked)."""
    return lab_config.with_ports(**{name: c.port for name, c in lab.components.items()})


def _up_argv(lab, lab_config, tmp_path) -> list[str]:
    """``lab up`` on the running lab's own ports (never the defaults)."""
    cfg = lab_config_file(_running_config(lab, lab_config), tmp_path / "lab.yaml")
    return ["lab", "up", "--config", str(cfg), "--state-dir", str(lab.state_dir)]


def test_up_twice_starts_no_duplicates(lab, lab_config, tmp_path, capsys, lab_pids):
    before = lab_pids(lab.state_dir)
    assert len(before) == 5
    again = lab_up(_running_config(lab, lab_config), lab.state_dir)
    assert again.already_running
    assert {c.pid for c in again.components.values()} == {c.pid for c in lab.components.values()}
    assert main(_up_argv(lab, lab_config, tmp_path)) == 0
    assert "already running" in capsys.readouterr().out
    assert lab_pids(lab.state_dir) == before


def test_status_cli_table_and_json(lab, capsys):
    assert main(["lab", "status", "--state-dir", str(lab.state_dir)]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in COMPONENTS) and "healthy" in table
    assert main(["lab", "status", "--state-dir", str(lab.state_dir), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is True
    assert {c["name"]: c["url"] for c in doc["components"]} == lab.urls


def test_up_output_names_secret_files_but_never_their_content(lab, lab_config, tmp_path, capsys):
    assert main(_up_argv(lab, lab_config, tmp_path)) == 0
    out = capsys.readouterr().out
    assert str(lab.admin_secret_file) in out and str(lab.credentials_file) in out
    assert lab.admin_secret() not in out
    assert not any(secret in out for secret in lab.credentials().values())
    logs = "".join(p.read_text(errors="replace") for p in (lab.state_dir / "logs").glob("*.log"))
    assert lab.admin_secret() not in logs
    assert not any(secret in logs for secret in lab.credentials().values())


def test_port_in_use_is_exit_2_and_nothing_starts(tmp_path, capsys, free_lab_config, lab_pids):
    config = free_lab_config(tmp_path)
    state_dir = tmp_path / "state"
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", config.ports.gateway))
        blocker.listen()
        cfg = lab_config_file(config, tmp_path / "lab.yaml")
        assert main(["lab", "up", "--config", str(cfg), "--state-dir", str(state_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err
        assert f"port {config.ports.gateway}" in err and "ports.gateway" in err
        assert not (state_dir / STATE_FILE).exists()
        assert lab_pids(state_dir) == set()


def test_bad_rule_file_is_exit_2_before_anything_starts(
    tmp_path, capsys, free_lab_config, lab_pids
):
    config = free_lab_config(tmp_path)
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - record: 1bad\n")
    cfg = lab_config_file(config, tmp_path / "lab.yaml", extra_rule_files=[str(broken)])
    state_dir = tmp_path / "state"
    assert main(["lab", "up", "--config", str(cfg), "--state-dir", str(state_dir)]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "invalid Prometheus rules" in err
    assert not (state_dir / STATE_FILE).exists()
    assert lab_pids(state_dir) == set()


def test_failed_start_stops_what_was_started(tmp_path, monkeypatch, free_lab_config, lab_pids):
    """A port taken between the check and the start (a race): Prometheus cannot bind."""
    config = free_lab_config(tmp_path)
    state_dir = tmp_path / "state"
    monkeypatch.setattr(orchestrator, "check_ports", lambda _config: None)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", config.ports.prometheus))
        blocker.listen()
        with pytest.raises(UnavailableError, match="prometheus") as info:
            lab_up(config, state_dir)
    assert "everything started was stopped" in str(info.value)
    assert not (state_dir / STATE_FILE).exists()
    assert lab_pids(state_dir) == set()


def test_a_stop_signal_right_after_a_spawn_still_stops_that_process(
    tmp_path, monkeypatch, free_lab_config, lab_pids
):
    """SIGTERM as the IdP has been spawned but not yet recorded (a CI run once left it
    running): the spawn and its record happen both or neither, so the clean-up stops it."""
    spawned = []
    original = processes._python_service

    def spawn_then_signal(name, *args, **kwargs):
        managed = original(name, *args, **kwargs)
        if name == "idp":
            spawned.append(managed.pid)
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)  # where the handler runs without the deferral
        return managed

    monkeypatch.setattr(processes, "_python_service", spawn_then_signal)
    state_dir = tmp_path / "state"
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_raise():
            lab_up(free_lab_config(tmp_path), state_dir)
        assert spawned and not pid_alive(spawned[0])
        assert lab_pids(state_dir) == set()
        assert not (state_dir / STATE_FILE).exists()
    finally:  # a failure must not leave the orphan running
        for pid in lab_pids(state_dir):
            os.kill(pid, signal.SIGKILL)


def test_down_stops_every_recorded_process_and_is_idempotent(
    tmp_path, capsys, free_lab_config, lab_pids
):
    state_dir = tmp_path / "state"
    try:
        state = lab_up(free_lab_config(tmp_path), state_dir)
        pids = {c.pid for c in state.components.values()}
        assert lab_pids(state.state_dir) == pids
    finally:
        stopped = lab_down(state_dir)
    assert sorted(stopped) == sorted(COMPONENTS)
    assert not any(pid_alive(pid) for pid in pids)
    assert lab_pids(state_dir) == set()
    assert not (state_dir / STATE_FILE).exists()
    assert lab_down(state_dir) == []
    assert main(["lab", "down", "--state-dir", str(state_dir)]) == 0
    assert main(["lab", "status", "--state-dir", str(state_dir)]) == 3


def test_a_new_lab_starts_with_an_empty_tsdb(tmp_path, free_lab_config):
    """Series of an earlier lab in the same state dir (same ports, same labels) would
    fill a new lab's alert windows with old traffic: up starts from an empty TSDB."""
    config = free_lab_config(tmp_path)
    state_dir = tmp_path / "state"
    try:
        first = lab_up(config, state_dir)
        first_scraped = _up_samples(first.urls["prometheus"])
        assert first_scraped, "the first lab scraped nothing"
    finally:
        lab_down(state_dir)
    try:
        second = lab_up(config, state_dir)
        samples = _up_samples(second.urls["prometheus"])
    finally:
        lab_down(state_dir)
    assert samples, "the second lab scraped nothing"
    assert min(samples) > max(first_scraped), "the second lab still holds the first one's data"


def _up_samples(prometheus_url: str) -> list[float]:
    """Timestamps of every ``up`` sample Prometheus holds from the last 10 minutes."""
    body = requests.get(
        prometheus_url + "/api/v1/query", params={"query": "up[10m]"}, timeout=5
    ).json()
    return [float(t) for series in body["data"]["result"] for t, _v in series["values"]]
