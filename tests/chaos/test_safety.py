"""Safety of fault injection against a real lab (free ports), with the real ``chaos run``:

* SIGINT during an experiment → the rollback (``--rollback-strategy always``) removes the
  fault at once, long before its expiry;
* SIGKILL of the runner → no rollback, the fault stays, and the server removes it at expiry;
  an unpublished signing key (F3) is published by the IdP itself at its expiry;
* a fault without expiry is refused by the admin API, the fault proxy, ``chaos validate``
  and the chaos action itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import uvicorn

from tokenslo.chaos import actions
from tokenslo.lab.faults import ADMIN_HEADER, LabAdmin
from tokenslo.prometheus.process import free_port
from tokenslo.proxy import FaultProxy
from tokenslo.proxy.cli import UVICORN_OPTIONS

pytestmark = [pytest.mark.lab, pytest.mark.chaos]

FIXTURES = Path(__file__).parent / "fixtures"
HOLD = FIXTURES / "safety-hold-fault.yaml"
HOLD_KEY = FIXTURES / "safety-hold-unpublished-key.yaml"
NO_EXPIRY = FIXTURES / "safety-fault-without-expiry.yaml"
CHAOS = Path(sys.executable).with_name("chaos")


def wait_until(
    check: Callable[[], object], timeout: float, interval: float = 0.1, log: Path | None = None
) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"not met within {timeout}s; last: {last!r}\n{tail}")


@pytest.fixture(scope="module")
def proxy(lab) -> Iterator[str]:
    """A fault proxy (in this process) in front of the lab IdP, sharing the lab's secret."""
    app = FaultProxy(lab.urls["idp"], lab.admin_secret(), timeout=5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **UVICORN_OPTIONS)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 10, 0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    app.engine.stop_sweeper()


def admin_for(lab, proxy_url: str, target: str) -> LabAdmin:
    return LabAdmin(proxy_url, lab.admin_secret()) if target == "proxy" else lab.admin("idp")


def start_run(
    lab, tmp_path: Path, runner: str, *, target="idp", expiry=300, proxy_url="", hold=HOLD
):
    """Start a hold experiment (a fault by default) in its own session, so signals reach
    only it."""
    env = {
        **os.environ,
        "TOKENSLO_TARGET_FILE": str(lab.state_dir / "target.yaml"),
        # a fault target is a component of the target file, or an admin base URL (the proxy)
        "TOKENSLO_SAFETY_TARGET": proxy_url if target == "proxy" else target,
        "TOKENSLO_SAFETY_FAULT_EXPIRY": str(expiry),
    }
    journal = tmp_path / "journal.json"
    if runner == "chaos":
        argv = [str(CHAOS), "--no-version-check", "--log-file", str(tmp_path / "chaos.log"),
                "run", "--rollback-strategy", "always", "--journal-path", str(journal),
                str(hold)]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "tokenslo", "chaos", "run", str(hold),
                "--target", str(lab.state_dir / "target.yaml"),
                "--journal", str(journal)]  # fmt: skip
    log = (tmp_path / "runner.out").open("wb")
    return subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def active_faults(admin: LabAdmin) -> list[dict]:
    return admin.list_faults()["faults"]


def stop(proc: subprocess.Popen) -> None:
    """Kill the run's session (runner and any child) by its PID group, if still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


RUNNERS = ["chaos", "tokenslo"]


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("target", ["idp", "proxy"])
def test_sigint_during_an_experiment_leaves_no_active_fault(
    lab, proxy, tmp_path: Path, runner: str, target: str
):
    admin = admin_for(lab, proxy, target)
    admin.clear_faults()
    proc = start_run(lab, tmp_path, runner, target=target, expiry=300, proxy_url=proxy)
    try:
        faults = wait_until(
            lambda: active_faults(admin) or proc.poll() is not None, 60, log=tmp_path / "runner.out"
        )
        assert isinstance(faults, list), (tmp_path / "runner.out").read_text()[-3000:]
        assert faults[0]["path_prefix"] == "/token"
        assert faults[0]["expires_at"] - time.time() > 200  # only the rollback can remove it
        target_url = proxy if target == "proxy" else lab.urls["idp"]
        assert requests.post(target_url + "/token", timeout=5).status_code == 503
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole group
        # Chaos Toolkit records the SIGINT but lets the current pause (the 30 s hold) run
        # out before it rolls back; beyond that and the rollback on a loaded machine. The
        # journal tells an interrupted run from one that merely ran out its hold.
        proc.wait(timeout=120)
        output = (tmp_path / "runner.out").read_text()
        assert active_faults(admin) == [], output[-3000:]
        assert requests.post(target_url + "/token", timeout=5).status_code != 503
        journal = json.loads((tmp_path / "journal.json").read_text())
        assert journal["status"] == "interrupted", output[-3000:]
        assert journal["interruption"]["name"] == "SIGINT", journal["interruption"]
    finally:
        stop(proc)
        admin.clear_faults()


@pytest.mark.parametrize("runner", RUNNERS)
def test_sigkill_of_the_runner_leaves_a_fault_that_expires_by_itself(
    lab, proxy, tmp_path: Path, runner: str
):
    admin = lab.admin("idp")
    admin.clear_faults()
    proc = start_run(lab, tmp_path, runner, expiry=6)
    try:
        faults = wait_until(
            lambda: active_faults(admin) or proc.poll() is not None, 60, log=tmp_path / "runner.out"
        )
        assert isinstance(faults, list), (tmp_path / "runner.out").read_text()[-3000:]
        fault = faults[0]
        # SIGKILL the whole session: runner and any chaos child, nothing gets to roll back.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert [f["id"] for f in active_faults(admin)] == [fault["id"]]  # left behind…
        wait_until(lambda: time.time() > fault["expires_at"] + 0.2, 15)
        assert active_faults(admin) == []  # …until its expiry, enforced by the server
        token = requests.post(lab.urls["idp"] + "/token", timeout=5)
        assert token.status_code == 401  # no credentials: the IdP answers, not the fault
    finally:
        stop(proc)
        admin.clear_faults()


def pending_keys(admin: LabAdmin) -> list[dict]:
    return [k for k in admin.list_keys()["keys"] if not k["published"]]


def gateway_accepts_a_new_token(lab) -> bool:
    creds = lab.credentials()
    issued = requests.post(
        lab.urls["idp"] + "/token",
        data={"grant_type": "client_credentials"},
        auth=("loadtest", creds["loadtest"]),
        timeout=5,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {issued}"}
    return requests.get(lab.urls["gateway"] + "/api/resource", headers=headers, timeout=5).ok


@pytest.mark.parametrize("runner", RUNNERS)
def test_sigkill_during_an_unpublished_rotation_still_publishes_the_key_at_expiry(
    lab, tmp_path: Path, runner: str
):
    admin = lab.admin("idp")
    assert pending_keys(admin) == []
    proc = start_run(lab, tmp_path, runner, expiry=6, hold=HOLD_KEY)
    try:
        pending = wait_until(
            lambda: pending_keys(admin) or proc.poll() is not None, 60, log=tmp_path / "runner.out"
        )
        assert isinstance(pending, list), (tmp_path / "runner.out").read_text()[-3000:]
        key = pending[0]
        os.killpg(proc.pid, signal.SIGKILL)  # no rollback will run
        proc.wait(timeout=10)
        assert [k["kid"] for k in pending_keys(admin)] == [key["kid"]]  # left behind…
        assert not gateway_accepts_a_new_token(lab)  # unknown_kid at the gateway
        jwks = lambda: requests.get(lab.urls["idp"] + "/jwks", timeout=5).json()  # noqa: E731
        wait_until(lambda: key["kid"] in {k["kid"] for k in jwks()["keys"]}, 15)
        assert time.time() >= key["publish_at"]  # …published by the IdP at its expiry
        assert pending_keys(admin) == []
        # validations recover once the gateway may refresh its JWKS again (cooldown 10 s)
        wait_until(lambda: gateway_accepts_a_new_token(lab), 20, interval=1)
    finally:
        stop(proc)
        if pending_keys(admin):
            admin.publish_key()


def test_fault_without_expiry_is_rejected_by_the_admin_api_and_the_proxy(lab, proxy):
    body = {"effect": "status", "status": 503, "path_prefix": "/token"}
    headers = {ADMIN_HEADER: lab.admin_secret()}
    for base in (lab.urls["idp"], lab.urls["gateway"], proxy):
        response = requests.post(base + "/admin/faults", json=body, headers=headers, timeout=5)
        assert response.status_code == 400, base
        assert "expires_in: required" in response.json()["error_description"]
        for bad in (0, -5, 1e9, "soon", None):
            rejected = requests.post(
                base + "/admin/faults", json={**body, "expires_in": bad}, headers=headers, timeout=5
            )
            assert rejected.status_code == 400, (base, bad)
            assert "expires_in" in rejected.json()["error_description"]
        assert LabAdmin(base, lab.admin_secret()).list_faults()["faults"] == []


@pytest.mark.parametrize("bad", [None, 0, -1, "", "forever", float("inf"), 10**9, True])
def test_fault_without_a_valid_expiry_is_refused_by_the_chaos_action(lab, bad):
    configuration = {"tokenslo_target_file": str(lab.state_dir / "target.yaml")}
    with pytest.raises(ValueError, match="expires_in"):
        actions.inject_http_fault(
            "idp", "status", bad, path="/token", status=503, configuration=configuration
        )
    assert lab.admin("idp").list_faults()["faults"] == []


def test_experiment_without_expiry_is_refused_before_anything_is_injected(lab, tmp_path: Path):
    env = {**os.environ, "TOKENSLO_TARGET_FILE": str(lab.state_dir / "target.yaml")}
    base = [str(CHAOS), "--no-version-check", "--no-log-file"]
    validate = subprocess.run(
        [*base, "validate", str(NO_EXPIRY)], env=env, capture_output=True, text=True, timeout=60
    )
    assert validate.returncode != 0
    assert "required argument 'expires_in' is missing" in validate.stdout + validate.stderr
    run = subprocess.run(
        [*base, "run", "--rollback-strategy", "always", "--journal-path",
         str(tmp_path / "journal.json"), str(NO_EXPIRY)],  # fmt: skip
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode != 0
    assert "expires_in" in run.stdout + run.stderr
    assert lab.admin("idp").list_faults()["faults"] == []
