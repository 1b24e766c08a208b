"""The real thing: a token the lab IdP issues over HTTP, leaked into a fake CI log the
way ``curl -v`` and a token response leak it, is found as a JWT still valid by its exp —
and the scan's output never carries it."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests

from support import ServedApp
from tokenslo.cli import main
from tokenslo.lab.idp.app import create_app
from tokenslo.lab.idp.clients import Client, ClientRegistry, hash_secret
from tokenslo.lab.idp.config import IdPConfig
from tokenslo.prometheus.process import free_port
from tokenslo.scan.detect import fingerprint

pytestmark = pytest.mark.lab

ADMIN = "scan-test-admin-secret-0123456789"
SECRET = "scan-test-client-secret-9f8e7d6c5b4a"  # pragma: allowlist secret
TTL = 300


@pytest.fixture
def idp_url(tmp_path):
    """The lab IdP alone, under uvicorn on 127.0.0.1, with one CI client."""
    port = free_port()
    clients = ClientRegistry(
        [
            Client(
                "ci", hash_secret(SECRET), scopes=("read",), audiences=("api://lab",), token_ttl=TTL
            )
        ]
    )
    config = IdPConfig(port=port, keys_file=tmp_path / "keys.json")
    app = create_app(config, admin_secret=ADMIN, clients=clients)
    served = ServedApp(app, port=port).start()
    try:
        yield served.url
    finally:
        served.stop()
        app.state.idp.engine.stop_sweeper()


def test_a_real_lab_token_in_a_ci_log_is_a_valid_jwt(idp_url, tmp_path, capsys):
    response = requests.post(
        idp_url + "/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=("ci", SECRET),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    issued = int(time.time())
    token = response.json()["access_token"]
    # the directory name the CI scan of the test outputs leaves out (tests/scan-exclude.txt)
    log = tmp_path / "leaky-workspace" / "job-1234.log"
    log.parent.mkdir()
    log.write_text(
        "2026-12-02T10:41:00Z + curl -sv https://api.internal/deploy\n"
        f"2026-12-02T10:41:00Z {response.text}\n"
        f"2026-12-02T10:41:01Z > Authorization: Bearer {token}\n"
        "2026-12-02T10:41:01Z < HTTP/1.1 204 No Content\n"
    )

    assert main(["scan", str(log)]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"{log}:2: jwt", f"{log}:3: jwt"]
    for line in lines:
        assert line.endswith(f" sha256:{fingerprint(token)}")
        until = line.split("valid until ")[1].split(")")[0]
        exp = datetime.strptime(until, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        assert issued - 5 <= exp - TTL <= issued + 5
    assert not any(token[i : i + 8] in out for i in range(len(token) - 7))
