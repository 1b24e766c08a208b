"""``tokenslo target check`` against npm oidc-provider: it names the provider's refusal to
introspect its own JWT access tokens, and the fix."""

from __future__ import annotations

import json

import pytest

from support import write_target
from tokenslo.cli import main

pytestmark = [pytest.mark.realidp, pytest.mark.slow]

RESOURCE = "api://realidp"  # server.mjs issues JWT access tokens for this resource


def _target(tmp_path, realidp, introspection_params: dict) -> str:
    client = {"client_id": realidp.credentials.client_id, "secret": {"env": "REALIDP_SECRET"}}
    jwt_client = {**client, "token_params": {"resource": RESOURCE}}
    path = write_target(
        tmp_path / "target.yaml",
        {
            "issuer": realidp.url,
            "clients": {
                "load": jwt_client,
                "introspection": {**client, "token_params": introspection_params},
            },
        },
    )
    return str(path)


def test_jwt_introspection_refusal_is_named_with_its_fix(realidp, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REALIDP_SECRET", realidp.credentials.client_secret)
    target = _target(tmp_path, realidp, {"resource": RESOURCE})  # JWTs for introspection
    assert main(["target", "check", target, "--format", "json"]) == 1
    findings = {f["check"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    refused = findings["introspection (introspection)"]
    assert refused["status"] == "fail"
    assert refused["detail"] == "jwt token: HTTP 400 unsupported_token_type"
    assert "this provider does not introspect JWT access tokens" in refused["hint"]
    assert "add an opaque client for the introspection role" in refused["hint"]
    assert main(["target", "check", target]) == 1  # the table shows the hint too
    out = capsys.readouterr().out
    assert "hint: this provider does not introspect JWT access tokens" in out
    assert realidp.credentials.client_secret not in out


def test_an_opaque_introspection_client_makes_the_target_usable(
    realidp, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("REALIDP_SECRET", realidp.credentials.client_secret)
    target = _target(tmp_path, realidp, {})  # no resource: opaque tokens
    assert main(["target", "check", target, "--format", "json"]) == 0
    findings = {f["check"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert "token issued (jwt)" in findings["client load"]["detail"]
    assert "token issued (opaque)" in findings["client introspection"]["detail"]
    assert findings["introspection (introspection)"]["status"] == "ok"
    assert findings["revocation (introspection)"]["status"] == "ok"
    # both discovery documents found and compared
    assert "oauth-authorization-server, openid-configuration" in findings["discovery"]["detail"]
