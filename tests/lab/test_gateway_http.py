"""The gateway end to end over real HTTP with the real IdP: metrics, revocation
propagation, JWKS outage and rotation, clock skew, faults, admin auth, entry point."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests
from gateway_fixtures import (
    CLIENT_IDS,
    Lab,
    b64,
    claims_for,
    forge,
    metric,
    result_of,
    scrape,
    threaded_lab,
    validations,
    wait_for,
)
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from support import ServedApp
from tokenslo.lab.gateway.metrics import LATENCY_BUCKETS
from tokenslo.lab.gateway.validator import RESULTS

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

POLL = 0.5  # revocation_poll_interval of this module's gateway
SLACK = 1.5


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with threaded_lab(
        tmp_path_factory.mktemp("gw-http"),
        jwks_refresh_cooldown=0.3,
        revocation_poll_interval=POLL,
        introspection_cache_ttl=1,
    ) as lab:
        yield lab


@pytest.fixture(autouse=True)
def _clear_faults(lab: Lab) -> Iterator[None]:
    yield
    for url in (lab.idp_url, lab.gateway_url):
        lab.admin("DELETE", f"{url}/admin/faults")


def test_metric_contract(lab: Lab) -> None:
    samples = scrape(lab.gateway_url)
    for result in RESULTS:  # pre-initialised: every series exists before the first error
        for client in (*CLIENT_IDS, "unknown"):
            key = (("client_id", client), ("result", result))
            assert ("gateway_token_validations_total", key) in samples
    for outcome in ("success", "error"):
        assert ("gateway_jwks_refreshes_total", (("outcome", outcome),)) in samples
    for code in ("200", "401", "503", "499"):
        assert ("gateway_requests_total", (("code", code),)) in samples
    for histogram in (
        "gateway_request_duration_seconds",
        "gateway_token_validation_duration_seconds",
    ):
        les = {dict(labels)["le"] for (name, labels) in samples if name == f"{histogram}_bucket"}
        assert {float(le) for le in les if le != "+Inf"} == set(LATENCY_BUCKETS)
    assert 0 <= samples[("gateway_jwks_cache_age_seconds", ())] < 300
    assert requests.get(f"{lab.gateway_url}/healthz", timeout=5).json() == {"status": "ok"}


def _by_client(lab: Lab) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["result"], dict(labels)["client_id"]): value
        for (name, labels), value in scrape(lab.gateway_url).items()
        if name == "gateway_token_validations_total"
    }


def test_validations_carry_a_client_id_only_when_the_issuer_vouched_for_it(lab: Lab) -> None:
    """The claim names the series only after the signature verified (or introspection
    said active) and only for a configured client; anything else is ``unknown``."""
    key, alg = lab.signing_key()
    header = {"alg": alg, "typ": "at+jwt", "kid": str(key.kid)}
    impostor = ECKey.generate_key("P-256")
    calls = [
        (lab.token()["access_token"], ("valid", "loadtest")),
        (lab.token("opaque-client")["access_token"], ("valid", "opaque-client")),
        # genuine signature, but a client the gateway does not know
        (forge(header, claims_for(lab, client_id="stranger"), key, alg), ("valid", "unknown")),
        # genuine signature, rejected for its audience: still the issuer's word on the client
        (forge(header, claims_for(lab, aud="api://x"), key, alg), ("wrong_audience", "loadtest")),
        # claims a registered client, signed by someone else under the IdP's kid
        (forge(header, claims_for(lab), impostor, "ES256"), ("bad_signature", "unknown")),
        (forge({"alg": "none", "typ": "at+jwt"}, claims_for(lab)), ("disallowed_alg", "unknown")),
    ]
    for token, series in calls:
        before = _by_client(lab)
        lab.call(token)
        after = _by_client(lab)
        moved = {k: after[k] - before[k] for k in after if after[k] != before[k]}
        assert moved == {series: 1}, (series, moved)
    assert set(after) == {(r, c) for r in RESULTS for c in (*CLIENT_IDS, "unknown")}


def test_requests_and_durations_are_counted(lab: Lab) -> None:
    before_ok = metric(lab.gateway_url, "gateway_requests_total", code="200")
    before_401 = metric(lab.gateway_url, "gateway_requests_total", code="401")
    before_dur = metric(lab.gateway_url, "gateway_token_validation_duration_seconds_count")
    assert lab.call(lab.token()["access_token"]).status_code == 200
    assert requests.get(f"{lab.gateway_url}/public/resource", timeout=5).status_code == 200
    assert lab.call("not-a-jwt.x").status_code == 401
    assert metric(lab.gateway_url, "gateway_requests_total", code="200") == before_ok + 2
    assert metric(lab.gateway_url, "gateway_requests_total", code="401") == before_401 + 1
    after_dur = metric(lab.gateway_url, "gateway_token_validation_duration_seconds_count")
    assert after_dur == before_dur + 2


def test_revocation_propagates_within_poll_interval(lab: Lab) -> None:
    token = lab.token()["access_token"]
    assert lab.call(token).status_code == 200
    lab.revoke(token)
    revoked_at = time.monotonic()

    def rejected() -> bool:
        return result_of(lab, token) == "revoked"

    wait_for(rejected, POLL + SLACK, "revoked JWT still accepted after poll interval + slack")
    assert time.monotonic() - revoked_at <= POLL + SLACK


def test_revoked_opaque_token_rejected_within_cache_ttl(lab: Lab) -> None:
    token = lab.token("opaque-client")["access_token"]
    assert lab.call(token).status_code == 200
    lab.revoke(token, "opaque-client")
    before = validations(lab.gateway_url)["inactive"]
    wait_for(lambda: lab.call(token).status_code == 401, 1 + SLACK, "opaque token still accepted")
    # introspection says only "not active": revoked, unknown and expired look alike
    assert validations(lab.gateway_url)["inactive"] == before + 1


def test_jwks_outage_keeps_serving_cached_keys(lab: Lab) -> None:
    token = lab.token()["access_token"]
    fault = lab.admin(
        "POST",
        f"{lab.idp_url}/admin/faults",
        {"path_prefix": "/jwks", "effect": "status", "status": 503, "expires_in": 30},
    )
    assert fault.status_code == 201
    errors = metric(lab.gateway_url, "gateway_jwks_refreshes_total", outcome="error")
    time.sleep(0.35)  # past the refresh cooldown
    # The next unknown kid triggers one refresh attempt, which fails.
    forged = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(forged[0] + "=" * (-len(forged[0]) % 4)))
    header["kid"] = "kid-that-does-not-exist"
    unknown = ".".join([b64(json.dumps(header).encode()), forged[1], forged[2]])
    # the IdP does not vouch for a token whose header was rewritten: not counted as ours
    assert result_of(lab, unknown) == "unknown_kid_unconfirmed"
    assert metric(lab.gateway_url, "gateway_jwks_refreshes_total", outcome="error") == errors + 1
    assert lab.call(token).status_code == 200  # stale keys still verify


def test_rotation_without_publish_is_unknown_kid_then_publish_fixes(lab: Lab) -> None:
    rotated = lab.admin(
        "POST", f"{lab.idp_url}/admin/keys/rotate", {"publish": False, "expires_in": 60}
    )
    assert rotated.status_code == 200, rotated.text
    time.sleep(0.35)
    token = lab.token()["access_token"]
    before = validations(lab.gateway_url)["unknown_kid"]
    assert result_of(lab, token) == "unknown_kid"
    assert validations(lab.gateway_url)["unknown_kid"] == before + 1
    assert lab.admin("POST", f"{lab.idp_url}/admin/keys/publish").status_code == 200
    time.sleep(0.35)  # cooldown, then the unknown kid triggers one refresh that finds it
    assert lab.call(token).status_code == 200


def test_clock_skew_on_idp_and_gateway(lab: Lab) -> None:
    # IdP clock 5 minutes ahead: iat beyond leeway → not_yet_valid.
    set_clock = lab.admin(
        "POST", f"{lab.idp_url}/admin/clock", {"offset_seconds": 300, "expires_in": 30}
    )
    assert set_clock.status_code in (200, 201), set_clock.text
    token = lab.token()["access_token"]
    assert result_of(lab, token) == "not_yet_valid"
    lab.admin("DELETE", f"{lab.idp_url}/admin/clock")
    # Gateway clock past exp + leeway (ttl 300 + leeway 60) → expired.
    token = lab.token()["access_token"]
    lab.admin("POST", f"{lab.gateway_url}/admin/clock", {"offset_seconds": 400, "expires_in": 30})
    try:
        assert result_of(lab, token) == "expired"
    finally:
        lab.admin("DELETE", f"{lab.gateway_url}/admin/clock")
    assert lab.call(token).status_code == 200


def test_faulted_responses_are_counted_with_client_status(lab: Lab) -> None:
    lab.admin(
        "POST",
        f"{lab.gateway_url}/admin/faults",
        {"path_prefix": "/api", "effect": "status", "status": 503, "expires_in": 30},
    )
    before = metric(lab.gateway_url, "gateway_requests_total", code="503")
    assert lab.call("x").status_code == 503
    assert metric(lab.gateway_url, "gateway_requests_total", code="503") == before + 1
    lab.admin("DELETE", f"{lab.gateway_url}/admin/faults")

    lab.admin(
        "POST",
        f"{lab.gateway_url}/admin/faults",
        {"path_prefix": "/public", "effect": "hang", "expires_in": 10},
    )
    before = metric(lab.gateway_url, "gateway_requests_total", code="499")
    with pytest.raises(requests.Timeout):
        requests.get(f"{lab.gateway_url}/public/resource", timeout=0.5)
    wait_for(
        lambda: metric(lab.gateway_url, "gateway_requests_total", code="499") == before + 1,
        5,
        "hang not counted as 499",
    )


def test_admin_requires_secret(lab: Lab) -> None:
    url = f"{lab.gateway_url}/admin/status"
    assert requests.get(url, timeout=5).status_code == 401
    wrong = {"X-Tokenslo-Admin-Secret": "wrong"}
    assert requests.get(url, headers=wrong, timeout=5).status_code == 401
    status = lab.admin("GET", url).json()
    assert status["jwks_kids"] and status["audience"] == "api://lab"


def test_entry_point_refuses_without_admin_secret(tmp_path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("port: 1\n")
    env = {k: v for k, v in os.environ.items() if k != "TOKENSLO_ADMIN_SECRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "tokenslo.lab.gateway", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "TOKENSLO_ADMIN_SECRET" in proc.stderr


def test_entry_point_bad_config_is_one_line(tmp_path) -> None:
    config = tmp_path / "gw.yaml"
    config.write_text("port: 9401\nallowed_algs: [HS256]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tokenslo.lab.gateway", "--config", str(config)],
        env={**os.environ, "TOKENSLO_ADMIN_SECRET": "x" * 20},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert f"{config}:2: allowed_algs:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_upstream_receives_authorized_requests(tmp_path) -> None:
    seen: list[str] = []

    async def resource(request):
        seen.append(request.headers.get("x-tokenslo-subject", ""))
        return JSONResponse({"from": "upstream"}, status_code=202)

    upstream = ServedApp(Starlette(routes=[Route("/api/resource", resource)])).start()
    try:
        with threaded_lab(tmp_path, upstream=upstream.url) as lab:
            response = lab.call(lab.token()["access_token"])
            assert (response.status_code, response.json()) == (202, {"from": "upstream"})
            assert lab.call("bad.token.here").status_code == 401
    finally:
        upstream.stop()
    assert seen == ["loadtest"]  # only the authorized request was forwarded
