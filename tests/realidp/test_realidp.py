"""tokenslo against an OAuth 2.0 provider nobody here wrote: panva's oidc-provider
(npm, OpenID Certified), started once per session on a free loopback port.

The provider is the ``realidp`` fixture (``conftest.py``). What differs from the lab is
pinned here and written up in docs/prober.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from support import write_target
from tokenslo.prober.config import ProbeConfig
from tokenslo.prober.runner import Prober, serve_metrics
from tokenslo.prober.transaction import run_transaction

if TYPE_CHECKING:
    from conftest import RealIdP  # the fixture's type (tests/realidp/conftest.py)

pytestmark = [pytest.mark.realidp, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESOURCE = "api://realidp"  # server.mjs issues JWT access tokens for this resource
STEPS = ("discover", "token", "api", "introspect", "revoke", "propagation", "jwks", "transaction")


def _results(result) -> dict[str, str]:
    return {name: result.steps[name].result for name in STEPS}


def test_prober_full_transaction_with_opaque_tokens(realidp: RealIdP):
    prober = Prober(ProbeConfig(realidp.url, realidp.credentials, propagation_timeout=5))
    result = prober.run_once()
    assert _results(result) == {
        "discover": "success",
        "token": "success",
        "api": "skipped",  # no resource server in front of this provider
        "introspect": "success",
        "revoke": "success",
        "propagation": "success",
        "jwks": "success",
        "transaction": "success",
    }, {n: s.detail for n, s in result.steps.items()}
    # Opaque tokens are stored server-side: revocation is visible at once.
    assert result.propagation_converged == {"introspection": True}
    assert result.propagation["introspection"] < 1.0
    # No iat in an opaque token: the skew comes from the introspection response's iat.
    assert abs(result.skew["token_iat"]) < 1.5
    assert abs(result.skew["date_header"]) < 1.5
    assert result.token_ttl == 300
    assert result.kid_published is None  # not a JWT: nothing to look up in the JWKS
    assert 20 <= result.token_size <= 100  # a short random reference, unlike the lab's JWTs
    labels = {"target": realidp.url}
    assert prober.registry.get_sample_value("probe_success", {**labels, "step": "propagation"}) == 1


def test_jwt_access_tokens_cannot_be_introspected_or_revoked(realidp: RealIdP):
    """oidc-provider issues RFC 9068 JWTs for a resource indicator, and by design refuses
    to introspect or revoke them (``unsupported_token_type``): the lab does both."""
    config = ProbeConfig(realidp.url, realidp.credentials, resource=RESOURCE)
    result = run_transaction(config)
    assert result.steps["token"].result == "success"
    assert result.steps["jwks"].result == "success"
    assert result.kid_published is True
    assert abs(result.skew["token_iat"]) < 1.5
    assert result.steps["introspect"].detail == "HTTP 400 (unsupported_token_type)"
    assert result.steps["revoke"].detail == "HTTP 400 (unsupported_token_type)"
    assert result.steps["propagation"].blocked
    assert result.token_size > 300


def test_exported_metrics_are_served_over_http(realidp: RealIdP):
    prober = Prober(ProbeConfig(realidp.url, realidp.credentials))
    server = serve_metrics(prober.registry, "127.0.0.1", 0)
    try:
        prober.run_once()
        text = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    target = f'target="{realidp.url}"'
    assert f'probe_success{{step="transaction",{target}}} 1.0' in text
    assert f"probe_token_ttl_seconds{{{target}}} 300.0" in text
    assert realidp.credentials.client_secret not in text


@pytest.mark.parametrize(
    ("scenario", "requests_named"),
    [
        ("issuance", "token:client_credentials"),
        ("introspection", "introspect"),
        ("revocation", "revoke"),
        ("jwks", "jwks"),
    ],
)
def test_locust_scenarios_run_against_the_real_provider(
    realidp: RealIdP, tmp_path: Path, scenario: str, requests_named: str
):
    """The load scenarios (loadtests/) need nothing but a target file (issuer, clients by
    role), so they run unchanged against a provider with other endpoint paths."""
    locustfile = REPO / "loadtests" / f"{scenario}.py"
    client = {"client_id": realidp.credentials.client_id, "secret": {"env": "REALIDP_SECRET"}}
    target = write_target(
        tmp_path / "target.yaml",
        {"issuer": realidp.url, "clients": {"load": client, "introspection": client}},
    )
    env = {
        **os.environ,
        "TOKENSLO_TARGET_FILE": str(target),
        "REALIDP_SECRET": realidp.credentials.client_secret,
    }
    argv = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "-u", "2", "-r", "2", "-t", "3s", "-H", realidp.url, "--json", "--only-summary",
        "--stop-timeout", "2",
    ]  # fmt: skip
    done = subprocess.run(
        argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    stats = {row["name"]: row for row in json.loads(done.stdout)}
    assert requests_named in stats, sorted(stats)
    row = stats[requests_named]
    assert row["num_requests"] >= 5 and row["num_failures"] == 0, row
    assert realidp.credentials.client_secret not in done.stdout + done.stderr
