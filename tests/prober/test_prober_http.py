"""The transaction over real HTTP against small loopback stubs: discovery fallback, the
client authentication the server advertises, steps a target does not offer, and failures
(target down, wrong issuer) that are counted rather than raised."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from support import write_target
from tokenslo.cli import main
from tokenslo.prober.config import Credentials, ProbeConfig
from tokenslo.prober.runner import Prober
from tokenslo.prober.transaction import run_transaction
from tokenslo.prometheus.process import free_port

CREDS = Credentials("probe-client", "probe-secret")


class StubIdP(ThreadingHTTPServer):
    """Serves only OpenID discovery, accepts only client_secret_post, no introspection."""

    daemon_threads = True

    def __init__(self, issuer_override: str | None = None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.issuer = issuer_override or self.url
        self.token_forms: list[dict[str, list[str]]] = []
        self.auth_headers: list[str | None] = []


class _Handler(BaseHTTPRequestHandler):
    server: StubIdP

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _json(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        base = self.server.url
        if self.path == "/.well-known/openid-configuration":
            self._json(
                200,
                {
                    "issuer": self.server.issuer,
                    "token_endpoint": f"{base}/token",
                    "jwks_uri": f"{base}/keys",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                },
            )
        elif self.path == "/keys":
            self._json(200, {"keys": [{"kty": "EC", "kid": "k1"}]})
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        self.server.token_forms.append(form)
        self.server.auth_headers.append(self.headers.get("Authorization"))
        if form.get("client_secret") != [CREDS.client_secret]:
            self._json(401, {"error": "invalid_client"})
            return
        header = base64.urlsafe_b64encode(b'{"alg":"ES256","kid":"k1"}').rstrip(b"=").decode()
        self._json(200, {"access_token": f"{header}.e30.sig", "expires_in": 120})


@pytest.fixture
def stub() -> Iterator[StubIdP]:
    server = StubIdP()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_falls_back_to_openid_discovery_and_uses_client_secret_post(stub: StubIdP):
    result = run_transaction(ProbeConfig(stub.url, CREDS, timeout=2))
    steps = {name: s.result for name, s in result.steps.items()}
    assert steps == {
        "discover": "success",
        "token": "success",
        "api": "skipped",
        "insufficient_scope": "skipped",  # no narrow-scope client configured
        "introspect": "skipped",
        "revoke": "skipped",
        "propagation": "skipped",
        "jwks": "success",
        "transaction": "success",
    }
    assert not any(s.blocked for s in result.steps.values())  # not offered, not blocked
    assert stub.auth_headers == [None]  # secret in the form, never in a Basic header here
    assert stub.token_forms[0]["grant_type"] == ["client_credentials"]
    assert result.token_ttl == 120 and result.kid_published is True
    assert "date_header" in result.skew and "token_iat" not in result.skew  # no iat claim


def test_wrong_issuer_fails_discovery_and_blocks_the_rest(stub: StubIdP):
    stub.issuer = "http://evil.example"
    result = run_transaction(ProbeConfig(stub.url, CREDS, timeout=2))
    assert result.steps["discover"].result == "failure"
    assert "issuer" in result.steps["discover"].detail
    assert all(s.blocked for n, s in result.steps.items() if n not in ("discover", "transaction"))
    assert result.unreachable and not result.ok


def test_rejected_credentials_fail_the_token_step_only(stub: StubIdP):
    result = run_transaction(ProbeConfig(stub.url, Credentials("probe-client", "wrong"), timeout=2))
    assert result.steps["token"].result == "failure"
    assert result.steps["token"].detail == "HTTP 401 (invalid_client)"
    assert result.steps["jwks"].result == "success"  # independent of the token
    assert result.steps["transaction"].result == "failure"


def test_target_down_counts_failures_and_keeps_running():
    port = free_port()  # nothing listens there
    prober = Prober(ProbeConfig(f"http://127.0.0.1:{port}", CREDS, timeout=1, interval=0.01))
    stop = threading.Event()
    assert prober.run(stop, max_runs=3) == 3
    reg = prober.registry
    labels = {"target": f"http://127.0.0.1:{port}"}
    assert (
        reg.get_sample_value(
            "probe_steps_total", {**labels, "step": "discover", "result": "failure"}
        )
        == 3
    )
    assert (
        reg.get_sample_value("probe_steps_total", {**labels, "step": "token", "result": "skipped"})
        == 3
    )
    assert reg.get_sample_value("probe_success", {**labels, "step": "transaction"}) == 0


def _target_file(tmp_path, issuer: str) -> str:
    clients = {"prober": {"client_id": CREDS.client_id, "secret": {"env": "PROBE_SECRET"}}}
    return str(write_target(tmp_path / f"t{len(list(tmp_path.iterdir()))}.yaml",
                            {"issuer": issuer, "clients": clients}))  # fmt: skip


def test_once_exit_codes(stub: StubIdP, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PROBE_SECRET", CREDS.client_secret)
    target = _target_file(tmp_path, stub.url)
    assert main(["probe", "--target", target, "--once", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["steps"]["jwks"]["result"] == "success"
    monkeypatch.setenv("PROBE_SECRET", "wrong")
    assert main(["probe", "--target", target, "--once"]) == 1
    captured = capsys.readouterr()
    assert "invalid_client" in captured.out and "wrong" not in captured.err
    down = _target_file(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert main(["probe", "--target", down, "--once", "--timeout", "1"]) == 3
