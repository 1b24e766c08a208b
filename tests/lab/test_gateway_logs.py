"""No secret in the logs: drive valid and hostile traffic through the real IdP and
gateway processes (``python -m``, stderr captured), then scan both logs for every
token (and any 20-character piece of one), client secret, admin secret and
private-key member."""

from __future__ import annotations

import json
import secrets

import pytest
import requests
from gateway_fixtures import Lab, claims_for, forge, subprocess_lab, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(180)]

PIECE = 20


def _pieces(secret: str) -> set[str]:
    return {secret[i : i + PIECE] for i in range(0, max(1, len(secret) - PIECE + 1))}


def _drive(lab: Lab) -> list[str]:
    """Valid, invalid, revoked and misplaced tokens; returns every token used."""
    tokens: list[str] = []
    issued = lab.token()
    tokens += [issued["access_token"], issued["refresh_token"]]
    opaque = lab.token("opaque-client")["access_token"]
    tokens.append(opaque)
    key, alg = lab.signing_key()
    header = {"alg": alg, "typ": "at+jwt", "kid": str(key.kid)}
    forged = [
        forge(header, claims_for(lab, iss="https://evil.example"), key, alg),
        forge(header, claims_for(lab, exp=None), key, alg),
        forge({**header, "alg": "none"}, claims_for(lab)),
        forge({**header, "kid": "../../etc/passwd"}, claims_for(lab), key, alg),
        issued["access_token"][:-4] + "AAAA",
        "x" * 9000,
        secrets.token_urlsafe(32),
    ]
    tokens += forged
    for token in [issued["access_token"], opaque, issued["refresh_token"], *forged]:
        lab.call(token)
        lab.call(token, "bearer")
    requests.get(f"{lab.gateway_url}/api/resource", params={"access_token": tokens[0]}, timeout=5)
    lab.revoke(issued["access_token"])
    lab.revoke(opaque, "opaque-client")
    wait_for(lambda: lab.call(issued["access_token"]).status_code == 401, 5, "not revoked")
    refreshed = requests.post(
        f"{lab.idp_url}/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=("loadtest", lab.client_secrets["loadtest"]),
        timeout=5,
    ).json()
    tokens += [v for k, v in refreshed.items() if k.endswith("_token")]
    # Reuse of the rotated refresh token: the IdP logs a family revocation.
    requests.post(
        f"{lab.idp_url}/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=("loadtest", lab.client_secrets["loadtest"]),
        timeout=5,
    )
    requests.get(f"{lab.gateway_url}/admin/status", headers={"X-Tokenslo-Admin-Secret": "no"})
    lab.admin("GET", f"{lab.gateway_url}/admin/status")
    return tokens


def test_logs_hold_no_tokens_or_secrets(tmp_path) -> None:
    with subprocess_lab(tmp_path, revocation_poll_interval=0.5) as lab:
        tokens = _drive(lab)
        key_members = json.loads(lab.keys_file.read_text())["keys"]
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("idp", "gateway")}
    assert "token" in logs["gateway"] and "rejected" in logs["gateway"]  # logging did happen
    assert "jwks refreshed" in logs["gateway"]

    forbidden: dict[str, str] = {}
    for token in tokens:
        for piece in _pieces(token):
            forbidden[piece] = "token"
    for client_id, secret in lab.client_secrets.items():
        forbidden[secret] = f"client secret of {client_id}"
    forbidden[lab.admin_secret] = "admin secret"
    for entry in key_members:
        for member in ("d", "p", "q", "dp", "dq", "qi"):
            if member in entry["jwk"]:
                forbidden[entry["jwk"][member]] = f"private key member {member}"
    forbidden["PRIVATE KEY"] = "PEM private key"
    for name, text in logs.items():
        leaks = sorted({what for needle, what in forbidden.items() if needle in text})
        assert not leaks, f"{name} log leaks: {leaks}"
