"""The per-client breakdown against a real lab (``lab up``: IdP, gateway, Prometheus):
a registered client's issuance and validations carry its ``client_id``; a request that
names a client it cannot authenticate as, or a token nobody vouched for, lands in
``unknown``; and no such request adds a series."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey
from test_lab_e2e import call_api, issue, prom_value

from tokenslo.lab.credentials import CLIENTS
from tokenslo.lab.gateway.validator import RESULTS

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

REGISTERED = tuple(client.client_id for client in CLIENTS)


def _token_request(lab, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        lab.urls["idp"] + "/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=5,
    )


def _forged_token(lab, client_id: str) -> str:
    """A well-formed RFC 9068 token for a registered client, signed by a key not the IdP's."""
    now = int(time.time())
    claims = {
        "iss": lab.urls["idp"],
        "sub": client_id,
        "aud": "api://lab",
        "exp": now + 300,
        "iat": now,
        "jti": secrets.token_hex(8),
        "scope": "api.read",
        "client_id": client_id,
    }
    key = ECKey.generate_key("P-256", parameters={"kid": "attacker"})
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": "attacker"}, claims, key)


def _sum(lab, selector: str) -> float:
    return prom_value(lab, f"sum({selector})") or 0.0


def _wait_for(lab, wait_until, selector: str, at_least: float) -> None:
    wait_until(lambda: _sum(lab, selector) >= at_least, timeout=15)


def test_registered_clients_are_labelled_and_the_rest_is_unknown(lab, wait_until):
    issued = (
        'idp_token_requests_total{client_id="loadtest",grant_type="client_credentials",code="200"}'
    )
    refused = 'idp_token_requests_total{client_id="unknown",code="401"}'
    invalid_client = 'idp_token_errors_total{client_id="unknown",error="invalid_client"}'
    valid = 'gateway_token_validations_total{client_id="loadtest",result="valid"}'
    forged = 'gateway_token_validations_total{client_id="unknown",result="unknown_kid_unconfirmed"}'
    before = {q: _sum(lab, q) for q in (issued, refused, invalid_client, valid, forged)}
    series_before = prom_value(lab, "count(gateway_token_validations_total)")

    token = issue(lab, "loadtest")
    assert call_api(lab, token).status_code == 200
    # a registered id with the wrong secret, and an id nobody registered: neither is that client
    assert _token_request(lab, "loadtest", "wrong-secret").status_code == 401
    assert _token_request(lab, f"evil-{secrets.token_hex(4)}", "x").status_code == 401
    # a token claiming a registered client, signed by someone else's key
    assert call_api(lab, _forged_token(lab, "loadtest")).status_code == 401

    _wait_for(lab, wait_until, issued, before[issued] + 1)
    _wait_for(lab, wait_until, valid, before[valid] + 1)
    _wait_for(lab, wait_until, refused, before[refused] + 2)
    _wait_for(lab, wait_until, invalid_client, before[invalid_client] + 2)
    _wait_for(lab, wait_until, forged, before[forged] + 1)
    # the forged token moved no registered client's series, and nobody's "valid"
    assert _sum(lab, 'gateway_token_validations_total{client_id="loadtest",result!="valid"}') == 0
    assert _sum(lab, valid) == before[valid] + 1

    # every series existed from the start and none was added: results x (clients + unknown)
    assert series_before == len(RESULTS) * (len(REGISTERED) + 1)
    assert prom_value(lab, "count(gateway_token_validations_total)") == series_before
    clients = {
        sample["metric"]["client_id"]
        for sample in requests.get(
            lab.urls["prometheus"] + "/api/v1/query",
            params={"query": "count by (client_id) (idp_token_requests_total)"},
            timeout=5,
        ).json()["data"]["result"]
    }
    assert clients == {*REGISTERED, "unknown"}


def test_an_expired_but_genuine_token_keeps_its_client(lab, wait_until):
    """A verified signature vouches for the client_id claim whatever the verdict."""
    expired = 'gateway_token_validations_total{client_id="prober",result="expired"}'
    before = _sum(lab, expired)
    token = issue(lab, "prober")
    gateway = lab.admin("gateway")
    gateway.set_clock(offset_seconds=3600, expires_in=60)
    try:
        assert call_api(lab, token).status_code == 401
    finally:
        gateway.clear_clock()
    _wait_for(lab, wait_until, expired, before + 1)
