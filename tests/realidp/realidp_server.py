"""Start panva's oidc-provider (``server.mjs``) on a free loopback port: the real-provider
tests' IdP. Set-up: ``npm ci --prefix tests/realidp``; skipped only when Node.js is missing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tokenslo.prober.config import Credentials
from tokenslo.prometheus.process import free_port, stop_pid

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RealIdP:
    url: str
    credentials: Credentials
    log: Path


def start_realidp(
    tmp_path_factory: pytest.TempPathFactory, alg: str = "ES256"
) -> Iterator[RealIdP]:
    """One oidc-provider process signing with ``alg`` until the generator is closed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed; the real-provider test needs node (CI has it)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("oidc-provider is not installed: run `npm ci --prefix tests/realidp`")
    port = free_port()
    creds = Credentials("tokenslo-prober", secrets.token_urlsafe(32))
    env = {
        **os.environ,
        "REALIDP_PORT": str(port),
        "REALIDP_CLIENT_ID": creds.client_id,
        "REALIDP_CLIENT_SECRET": creds.client_secret,
        "REALIDP_ALG": alg,
        "NODE_ENV": "test",
    }
    log = tmp_path_factory.mktemp("realidp") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [node, "server.mjs"], cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log, timeout=30)
        yield RealIdP(url, creds, log)
    finally:
        stop_pid(proc.pid, child=proc)


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"oidc-provider exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if requests.get(url + "/.well-known/openid-configuration", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"oidc-provider not ready after {timeout}s: {log.read_text()[-2000:]}")
