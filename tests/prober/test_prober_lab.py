"""The prober against the real lab (IdP, gateway, Prometheus), on free ports.

In-process transactions check the values (success, propagation bounded by the
gateway's revocation poll interval, clock skew near 0 and ≈ an injected offset,
injected faults counted as failures); a ``tokenslo probe`` subprocess on the lab's
``ports.prober`` is scraped by the lab's Prometheus and ``tokenslo slo status
slo/probe/`` evaluates the probe SLOs from it, then SIGTERM stops it cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from support import free_ports_lab_config, lab_up_on_free_ports
from tokenslo.cli import main
from tokenslo.lab.orchestrator import lab_down
from tokenslo.lab.state import LabState
from tokenslo.prober.config import Credentials, ProbeConfig
from tokenslo.prober.result import STEPS
from tokenslo.prober.runner import Prober
from tokenslo.prober.transaction import run_transaction
from tokenslo.prometheus.process import free_port, stop_pid

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
POLL_INTERVAL = 2.0  # the lab gateway's revocation_poll_interval (lab.default.yaml)


@pytest.fixture(scope="module")
def prober_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """A lab whose Prometheus also scrapes ``ports.prober``."""
    state_dir = tmp_path_factory.mktemp("prober-lab") / "state"
    config = free_ports_lab_config().with_ports(prober=free_port())
    try:
        state, config = lab_up_on_free_ports(config, state_dir)
        state.prober_port = config.ports.prober  # type: ignore[attr-defined]
        yield state
    finally:
        lab_down(state_dir)


def _config(lab: LabState, **overrides) -> ProbeConfig:
    creds = lab.credentials()
    settings = {
        "target": lab.urls["idp"],
        "credentials": Credentials("prober", creds["prober"]),
        "api": lab.urls["gateway"] + "/api/resource",
        # the lab registers prober for api.read only: its tokens may not POST (api.write)
        "narrow": Credentials("prober", creds["prober"]),
        "write_api": lab.urls["gateway"] + "/api/resource",
        "timeout": 5.0,
        "propagation_timeout": 6.0,
        **overrides,
    }
    return ProbeConfig(**settings)


def test_a_healthy_lab_passes_every_step_with_plausible_values(prober_lab: LabState):
    prober = Prober(_config(prober_lab))
    result = prober.run_once()
    assert {n: s.result for n, s in result.steps.items()} == dict.fromkeys(STEPS, "success")
    assert "insufficient_scope" in STEPS
    # The IdP revokes at once; the gateway learns it from its next revocation-list poll.
    assert result.propagation["introspection"] < 0.5
    assert 0 < result.propagation["api"] <= POLL_INTERVAL + 1.0
    assert abs(result.skew["date_header"]) < 2.0  # Date has 1 s resolution (uvicorn caches it)
    assert abs(result.skew["token_iat"]) < 1.5
    assert result.token_ttl == 300 and 200 < result.token_size < 2000
    assert result.kid_published is True
    reg = prober.registry
    labels = {"target": prober_lab.urls["idp"]}
    assert reg.get_sample_value("probe_success", {**labels, "step": "transaction"}) == 1
    gauge = reg.get_sample_value("probe_revocation_propagation_seconds", {**labels, "stage": "api"})
    assert gauge == result.propagation["api"]
    assert reg.get_sample_value("probe_token_size_bytes", labels) == result.token_size


def test_a_clock_offset_on_the_idp_shows_as_token_iat_skew(prober_lab: LabState):
    admin = prober_lab.admin("idp")
    admin.set_clock(-120, expires_in=30)
    try:
        result = run_transaction(_config(prober_lab, api=None))
    finally:
        admin.clear_faults()
    assert result.skew["token_iat"] == pytest.approx(-120, abs=1.5)
    # The lab shifts only its token clock; uvicorn writes Date from the real clock.
    assert abs(result.skew["date_header"]) < 2.0


def test_injected_introspection_errors_are_counted_not_raised(prober_lab: LabState):
    admin = prober_lab.admin("idp")
    admin.add_fault("status", 30, "/introspect", method="POST", status=503)
    try:
        prober = Prober(_config(prober_lab, api=None, propagation_timeout=1.0))
        result = prober.run_once()
    finally:
        admin.clear_faults()
    assert result.steps["token"].result == "success"
    assert result.steps["introspect"].detail.startswith("HTTP 503")
    assert result.steps["propagation"].result == "failure"  # introspection never answered
    assert result.propagation_converged == {"introspection": False}
    labels = {"target": prober_lab.urls["idp"]}
    count = prober.registry.get_sample_value
    assert count("probe_steps_total", {**labels, "step": "introspect", "result": "failure"}) == 1
    assert count("probe_steps_total", {**labels, "step": "transaction", "result": "failure"}) == 1


def test_a_write_route_that_accepts_a_token_without_its_scope_fails_the_check(
    prober_lab: LabState,
):
    """loadtest holds api.write, so its token is no narrow one: the 200 is reported as the
    failure it would be for a client that really lacks the scope."""
    creds = prober_lab.credentials()
    wide = Credentials("loadtest", creds["loadtest"])
    result = run_transaction(_config(prober_lab, narrow=wide, propagation_timeout=1.0))
    step = result.steps["insufficient_scope"]
    assert step.result == "failure"
    assert step.detail == (
        "write route answered HTTP 200 to a token without its scope; "
        "expected 403 insufficient_scope"
    )
    assert result.steps["transaction"].result == "failure"
    wrong = Credentials("prober", "not-the-secret")
    result = run_transaction(_config(prober_lab, narrow=wrong, propagation_timeout=1.0))
    assert result.steps["insufficient_scope"].detail == (
        "the narrow_scope client got no token: HTTP 401 (invalid_client)"
    )
    assert creds["prober"] not in repr(result)


def test_without_a_narrow_scope_client_the_check_is_not_configured(prober_lab: LabState):
    prober = Prober(_config(prober_lab, narrow=None))
    result = prober.run_once()
    step = result.steps["insufficient_scope"]
    assert (step.result, step.blocked) == ("skipped", False)
    assert step.detail == "not configured (target file needs a client in role narrow_scope)"
    assert result.steps["transaction"].result == "success"
    labels = {"target": prober_lab.urls["idp"], "step": "insufficient_scope"}
    assert prober.registry.get_sample_value("probe_success", labels) is None  # not a 0


def _prom_value(prom: str, query: str) -> float | None:
    body = requests.get(f"{prom}/api/v1/query", params={"query": query}, timeout=5).json()
    result = body["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_the_prober_and_slo_status_evaluates_probe_slos(
    prober_lab: LabState, tmp_path: Path, capsys
):
    port = prober_lab.prober_port  # type: ignore[attr-defined]
    prom = prober_lab.urls["prometheus"]
    env = dict(os.environ)
    argv = [
        sys.executable, "-m", "tokenslo", "probe",
        "--target", str(prober_lab.state_dir / "target.yaml"),
        "--listen", f"127.0.0.1:{port}",
        "--interval", "0.5",
        "--max-runs", "200",  # a bound even if the test dies before SIGTERM
    ]  # fmt: skip
    log = (tmp_path / "prober.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        # Enough scraped transactions for every SLO's rate()/increase() to see an increase.
        query = (
            'sum(increase(probe_revocation_propagation_duration_seconds_count{stage="api"}[5m]))'
        )
        deadline = time.monotonic() + 60
        seen = None
        while time.monotonic() < deadline:
            seen = _prom_value(prom, query)
            if seen is not None and seen >= 3:
                break
            time.sleep(1)
        assert seen is not None and seen >= 3, f"Prometheus saw {seen} transactions"
        skew = _prom_value(prom, 'probe_clock_skew_seconds{source="token_iat", job="prober"}')
        assert skew is not None and abs(skew) < 1.5
        # the lab's target file names a narrow_scope client and the write route
        scope_check = 'probe_success{step="insufficient_scope", job="prober"}'
        assert _prom_value(prom, scope_check) == 1

        code = main(["slo", "status", str(REPO / "slo" / "probe"), "--prometheus", prom,
                     "--format", "json"])  # fmt: skip
        statuses = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
        assert code == 0
        assert set(statuses) == {
            "probe-transaction-success",
            "probe-token-latency",
            "probe-revocation-propagation",
            "probe-jwks-success",
        }
        for status in statuses.values():
            assert status["state"] == "ok", status
            assert status["sli"] == pytest.approx(1.0), status
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            stop_pid(proc.pid)
            proc.wait(timeout=5)
            code = None
        log.close()
    text = (tmp_path / "prober.log").read_text()
    assert code == 0, text
    assert "prober stopped after" in text
    assert prober_lab.credentials()["prober"] not in text
