"""``python -m tokenslo.lab.idp`` as the orchestrator runs it: a subprocess on loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tokenslo.lab.idp.clients import hash_secret
from tokenslo.prometheus.process import free_port, stop_pid

pytestmark = pytest.mark.lab

ADMIN = "process-admin-secret-abcdef0123456789"
SECRET = "process-client-secret-0123456789abcdef"


def _write_state(tmp_path: Path, port: int) -> Path:
    (tmp_path / "clients.yaml").write_text(
        "clients:\n"
        "  - client_id: svc\n"
        f"    secret_sha256: {hash_secret(SECRET)}\n"
        "    scopes: [read]\n"
        "    audiences: [api://lab]\n"
        "    grant_types: [client_credentials, refresh_token]\n"
    )
    config = tmp_path / "idp.yaml"
    config.write_text(
        f"host: 127.0.0.1\nport: {port}\nsigning_alg: ES256\n"
        f"keys_file: {tmp_path / 'keys.json'}\nclients_file: {tmp_path / 'clients.yaml'}\n"
    )
    return config


def _spawn(config: Path, tmp_path: Path, admin: str | None = ADMIN) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "TOKENSLO_ADMIN_SECRET"}
    if admin is not None:
        env["TOKENSLO_ADMIN_SECRET"] = admin
    return subprocess.Popen(
        [sys.executable, "-m", "tokenslo.lab.idp", "--config", str(config), "--log-level", "debug"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_healthy(proc: subprocess.Popen, url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate(timeout=5)[1]
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError("idp did not become healthy")


def test_subprocess_serves_tokens_persists_keys_and_stops_on_sigterm(tmp_path):
    port = free_port()
    config = _write_state(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    kids = []
    tokens = []
    for _ in range(2):  # the second run must reuse the persisted key
        proc = _spawn(config, tmp_path)
        try:
            _wait_healthy(proc, url)
            issued = requests.post(
                url + "/token",
                data={"grant_type": "client_credentials"},
                auth=("svc", SECRET),
                timeout=5,
            ).json()
            tokens += [issued["access_token"], issued["refresh_token"]]
            kids.append(requests.get(url + "/jwks", timeout=5).json()["keys"][0]["kid"])
            os.kill(proc.pid, signal.SIGTERM)
            _, stderr = proc.communicate(timeout=15)
        finally:
            stop_pid(proc.pid, child=proc)
        assert proc.returncode == 0, stderr
        assert "idp starting" in stderr and "token issued" in stderr
        for secret in (ADMIN, SECRET, *tokens):
            assert secret not in stderr
    assert kids[0] == kids[1]
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0


def test_refuses_to_start_without_admin_secret(tmp_path):
    config = _write_state(tmp_path, free_port())
    proc = _spawn(config, tmp_path, admin=None)
    try:
        _, stderr = proc.communicate(timeout=20)
    finally:
        stop_pid(proc.pid, child=proc)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokenslo idp: ")
    assert "TOKENSLO_ADMIN_SECRET" in lines[0] and "--admin-secret-file" in lines[0]


def test_bad_config_is_one_line_exit_2(tmp_path):
    config = _write_state(tmp_path, free_port())
    config.write_text(config.read_text().replace("ES256", "HS256"))
    proc = _spawn(config, tmp_path)
    try:
        _, stderr = proc.communicate(timeout=20)
    finally:
        stop_pid(proc.pid, child=proc)
    assert proc.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr
    assert lines[0].startswith(f"tokenslo idp: {config}:3: signing_alg:")
