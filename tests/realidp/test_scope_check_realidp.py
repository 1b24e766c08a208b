"""The prober's ``insufficient_scope`` check against a provider nobody here wrote.

panva's oidc-provider issues an RFC 9068 JWT with scope ``api.read`` for
``resource=api://realidp``, signed ES256; the lab gateway, configured to trust that
issuer and nothing else, guards the write route (``POST``, ``api.write``). A target file
naming that client in role ``narrow_scope`` and the route as ``api.write_url`` makes the
check pass through ``tokenslo probe --once``; without the role it is "not configured".
The gateway also labels the validation with the provider's client, which it was told
is registered.

The provider does not normalise ECDSA signatures (Node's crypto makes about half of its
tokens high-S, which RFC 7518 allows): the gateway accepts every one of them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from realidp_server import RealIdP

from support import ServedApp, write_target
from tokenslo.jws import is_high_s
from tokenslo.lab.gateway.app import create_app
from tokenslo.lab.gateway.config import GatewayConfig

pytestmark = [pytest.mark.realidp, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RESOURCE = "api://realidp"  # server.mjs issues JWT access tokens for this resource
NARROW = {"resource": RESOURCE, "scope": "api.read"}


@pytest.fixture(scope="module")
def gateway(realidp: RealIdP) -> Iterator[str]:
    """The lab gateway as the provider's resource server (no IdP credentials: JWTs only)."""
    config = GatewayConfig(
        issuer=realidp.url,
        audience=RESOURCE,
        allowed_algs=("ES256",),
        credentials_file=None,
        clients=(realidp.credentials.client_id,),
    )
    app = create_app(config, admin_secret=secrets.token_urlsafe(16))
    served = ServedApp(app).start()
    try:
        # as in production, the first poll loads the JWKS; probing before it races the poll
        deadline = time.monotonic() + 10
        while not app.state.gateway.jwks.kids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.gateway.jwks.kids, "the gateway never loaded the provider's JWKS"
        yield served.url
    finally:
        served.stop()


def _probe_once(realidp: RealIdP, tmp_path: Path, clients: dict, api: dict) -> dict:
    target = write_target(
        tmp_path / "target.yaml", {"issuer": realidp.url, "clients": clients, "api": api}
    )
    env = {**os.environ, "REALIDP_SECRET": realidp.credentials.client_secret}
    argv = [sys.executable, "-m", "tokenslo", "probe", "--once", "--format", "json",
            "--target", str(target), "--propagation-timeout", "2"]  # fmt: skip
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert realidp.credentials.client_secret not in done.stdout + done.stderr
    return json.loads(done.stdout)


def _validations(gateway: str) -> dict[tuple[str, str], float]:
    text = requests.get(gateway + "/metrics", timeout=5).text
    return {
        (s.labels["result"], s.labels["client_id"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "gateway_token_validations_total"
    }


def test_a_narrow_scope_client_gets_403_insufficient_scope_on_the_write_route(
    realidp: RealIdP, gateway: str, tmp_path: Path
):
    client = {"client_id": realidp.credentials.client_id, "secret": {"env": "REALIDP_SECRET"}}
    api = {"url": gateway + "/api/resource", "write_url": gateway + "/api/resource"}
    before = _validations(gateway)
    narrow = {**client, "token_params": NARROW}
    out = _probe_once(realidp, tmp_path, {"prober": narrow, "narrow_scope": narrow}, api)
    # the same token kind reads (GET: api.read) but may not write (POST: api.write)
    assert out["steps"]["api"]["result"] == "success", out["steps"]["api"]
    step = out["steps"]["insufficient_scope"]
    assert step["result"] == "success", step
    after = _validations(gateway)
    # the provider's tokens verified, so the gateway counts them under that registered client
    valid = ("valid", realidp.credentials.client_id)
    assert after[valid] >= before[valid] + 2


def test_without_a_narrow_scope_client_the_check_is_not_configured(
    realidp: RealIdP, gateway: str, tmp_path: Path
):
    client = {"client_id": realidp.credentials.client_id, "secret": {"env": "REALIDP_SECRET"}}
    api = {"url": gateway + "/api/resource", "write_url": gateway + "/api/resource"}
    out = _probe_once(realidp, tmp_path, {"prober": client}, api)
    assert out["steps"]["insufficient_scope"] == {
        "result": "skipped",
        "seconds": None,
        "detail": "not configured (target file needs a client in role narrow_scope)",
    }


def _signature(token: str) -> bytes:
    segment = token.split(".")[2]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_every_es256_token_of_the_provider_validates_high_s_or_not(realidp: RealIdP, gateway: str):
    """Consecutive tokens, at least 20 and until both S forms were seen (each is one in
    two, so 60 tokens without one form is a 2**-59 chance): all are answered 200."""
    metadata = requests.get(realidp.url + "/.well-known/openid-configuration", timeout=5).json()
    auth = (realidp.credentials.client_id, realidp.credentials.client_secret)
    form = {"grant_type": "client_credentials", **NARROW}
    tokens: list[str] = []
    while len(tokens) < 60 and (
        len(tokens) < 20 or len({is_high_s("ES256", _signature(t)) for t in tokens}) < 2
    ):
        issued = requests.post(metadata["token_endpoint"], data=form, auth=auth, timeout=10)
        issued.raise_for_status()
        tokens.append(issued.json()["access_token"])
    high = [t for t in tokens if is_high_s("ES256", _signature(t))]
    assert 0 < len(high) < len(tokens), "the provider should sign both S forms"
    before = _validations(gateway)
    statuses = [
        requests.get(
            gateway + "/api/resource", headers={"Authorization": f"Bearer {t}"}, timeout=10
        ).status_code
        for t in tokens
    ]
    assert statuses == [200] * len(tokens)
    after = _validations(gateway)
    valid = ("valid", realidp.credentials.client_id)
    assert after[valid] == before.get(valid, 0.0) + len(tokens)
