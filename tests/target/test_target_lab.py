"""The lab describes itself as a target, and ``target check`` finds it all usable."""

from __future__ import annotations

import json
import stat
import time

import pytest
import requests

from support import free_ports_lab_config, lab_up_on_free_ports
from tokenslo.cli import main
from tokenslo.target.loader import load_target

pytestmark = [pytest.mark.lab, pytest.mark.prometheus]


def wait_for_two_scrapes(prometheus: str, timeout: float = 30.0) -> None:
    """Until every scrape target has been scraped at least twice (a condition, not a sleep)."""
    query = "min(count_over_time(up[5m]))"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        result = body.json()["data"]["result"]
        if result and float(result[0]["value"][1]) >= 2:
            return
        time.sleep(0.25)
    raise AssertionError(f"Prometheus did not scrape every target twice within {timeout:g} s")


def test_lab_up_writes_its_target_and_target_check_is_green(lab, capsys):
    path = lab.state_dir / "target.yaml"
    target = load_target(path)
    assert target.issuer == lab.issuer and target.discovery_url == lab.issuer
    assert target.api_url == lab.urls["gateway"] + "/api/resource"
    assert target.api_write_url == target.api_url  # POST is the write route
    assert target.prometheus_url == lab.urls["prometheus"]
    assert {c: f.kind for c, f in target.faults.items()} == {"idp": "lab", "gateway": "lab"}
    assert set(target.clients) == {"load", "prober", "introspection", "narrow_scope"}
    assert target.client("narrow_scope").client_id == "prober"  # registered for api.read only
    # secrets stay in their 0600 file: the target file names it, never a value
    text = path.read_text()
    assert all(secret not in text for secret in lab.credentials().values())
    assert lab.admin_secret() not in text
    assert stat.S_IMODE(target.client("load").secret.file.stat().st_mode) == 0o600

    wait_for_two_scrapes(lab.urls["prometheus"])  # rate() needs two samples of every series
    assert main(["target", "check", str(path), "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    statuses = {f["check"]: f["status"] for f in findings}
    assert statuses["discovery"] == "ok" and statuses["api"] == "ok"
    assert statuses["client load"] == statuses["introspection (introspection)"] == "ok"
    assert statuses["faults (idp, lab)"] == statuses["faults (gateway, lab)"] == "ok"
    assert {f["status"] for f in findings} == {"ok"}, [f for f in findings if f["status"] != "ok"]
    everything = json.dumps(findings)
    assert all(secret not in everything for secret in lab.credentials().values())


def test_target_check_names_a_wrong_secret(lab, tmp_path, capsys, monkeypatch):
    text = (lab.state_dir / "target.yaml").read_text()
    bad = tmp_path / "target.yaml"
    bad.write_text(text.replace(f"file: {lab.credentials_file}", "env: WRONG_SECRET", 1))
    monkeypatch.setenv("WRONG_SECRET", "not-the-secret")
    assert main(["target", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "client load" in out and "HTTP 401 invalid_client" in out
    assert "check client_id and the secret" in out and "not-the-secret" not in out


def test_lab_down_removes_its_target_file(tmp_path):
    from tokenslo.lab.orchestrator import lab_down

    state, _config = lab_up_on_free_ports(free_ports_lab_config(), tmp_path / "state")
    try:
        assert (state.state_dir / "target.yaml").is_file()
    finally:
        lab_down(state.state_dir)
    assert not (state.state_dir / "target.yaml").exists()
