"""Token profiles (the IdP issuing bad tokens for a client) and the gateway's 431.

The parser is tested as a pure function; everything else against a real IdP and a real
gateway over HTTP (``threaded_lab``): a narrowed scope is 403 ``insufficient_scope`` and a
deny, another audience is ``wrong_audience`` once per token, a bloated token is answered
431 and counted ``too_large`` without touching the validation SLO's series.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests
from gateway_fixtures import (
    Lab,
    metric,
    resource_call,
    threaded_lab,
    unverified_claims,
    validations,
)

from tokenslo.lab.faults.client import LabAdmin
from tokenslo.lab.idp.profiles import (
    MAX_EXTRA_CLAIMS_BYTES,
    ProfileStore,
    bloat_groups,
    parse_profile,
)

CLIENTS = ("loadtest", "gateway")
# The result labels the token-validation-success SLO reads (slo/gateway.yaml).
SLO_RESULTS = ("valid", "unknown_kid", "not_yet_valid", "expired", "wrong_audience")
WRITE_CHALLENGE = (
    'Bearer realm="tokenslo", error="insufficient_scope", '
    'error_description="token lacks a required scope", scope="api.write"'
)


def parse(body: object, max_expiry: float = 3600.0):
    return parse_profile(body, now=1000.0, max_expiry=max_expiry, clients=CLIENTS)


# -- the parser (pure) -------------------------------------------------------------------------


def test_a_profile_keeps_what_it_changes_and_expires_after_expires_in() -> None:
    profile = parse({"client_id": "loadtest", "expires_in": 60, "scope": "api.read"})
    assert (profile.client_id, profile.expires_at, profile.scope) == (
        "loadtest",
        1060.0,
        "api.read",
    )
    assert profile.audience is None and profile.extra_claims_bytes == 0 and profile.groups == ()
    every = parse({"client_id": "*", "expires_in": 1.5, "audience": "api://x", "scope": ""})
    assert (every.client_id, every.audience, every.scope) == ("*", "api://x", "")


def test_the_bloat_claim_is_about_the_requested_size() -> None:
    profile = parse({"client_id": "loadtest", "expires_in": 5, "extra_claims_bytes": 6000})
    size = len(json.dumps(list(profile.groups), separators=(",", ":")))
    assert 5900 <= size <= 6000
    assert bloat_groups(1) and len(set(bloat_groups(500))) == len(bloat_groups(500))


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "body: must be a JSON object"),
        ({"client_id": "loadtest", "expires_in": 5, "scope": "x", "colour": 1}, "colour: unknown"),
        ({"expires_in": 5, "scope": "x"}, "client_id: required"),
        ({"client_id": "nobody", "expires_in": 5, "scope": "x"}, "client_id: required"),
        ({"client_id": 7, "expires_in": 5, "scope": "x"}, "client_id: required"),
        ({"client_id": "loadtest", "scope": "x"}, "expires_in: required"),
        ({"client_id": "loadtest", "expires_in": 0, "scope": "x"}, "expires_in: required"),
        ({"client_id": "loadtest", "expires_in": 3601, "scope": "x"}, "<= 3600"),
        (
            {"client_id": "loadtest", "expires_in": "5", "scope": "x"},
            "expires_in: must be a number",
        ),
        (
            {"client_id": "loadtest", "expires_in": True, "scope": "x"},
            "expires_in: must be a number",
        ),
        ({"client_id": "loadtest", "expires_in": 5}, "at least one of audience, scope"),
        (
            {"client_id": "loadtest", "expires_in": 5, "audience": ""},
            "audience: must be a non-empty",
        ),
        (
            {"client_id": "loadtest", "expires_in": 5, "audience": 3},
            "audience: must be a non-empty",
        ),
        ({"client_id": "loadtest", "expires_in": 5, "audience": "a" * 257}, "at most 256"),
        ({"client_id": "loadtest", "expires_in": 5, "audience": "a\nb"}, "printable"),
        ({"client_id": "loadtest", "expires_in": 5, "scope": ["api.read"]}, "scope: must be a"),
        ({"client_id": "loadtest", "expires_in": 5, "scope": "a  b"}, "scope: space-separated"),
        ({"client_id": "loadtest", "expires_in": 5, "scope": 'a"b'}, "scope: space-separated"),
        ({"client_id": "loadtest", "expires_in": 5, "extra_claims_bytes": "9"}, "an integer"),
        ({"client_id": "loadtest", "expires_in": 5, "extra_claims_bytes": 1.5}, "an integer"),
        ({"client_id": "loadtest", "expires_in": 5, "extra_claims_bytes": True}, "an integer"),
        ({"client_id": "loadtest", "expires_in": 5, "extra_claims_bytes": -1}, "between 0 and"),
        (
            {
                "client_id": "loadtest",
                "expires_in": 5,
                "extra_claims_bytes": MAX_EXTRA_CLAIMS_BYTES + 1,
            },
            "between 0 and",
        ),
    ],
)
def test_bad_bodies_are_refused_naming_the_field(body: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse(body)


def test_a_client_profile_wins_over_the_one_for_everyone_and_both_expire() -> None:
    now = [1000.0]
    ended: list[tuple[str, str]] = []
    store = ProfileStore(lambda: now[0], lambda action, p: ended.append((action, p.client_id)))
    store.set(parse({"client_id": "*", "expires_in": 10, "scope": ""}))
    store.set(parse({"client_id": "loadtest", "expires_in": 5, "scope": "api.read"}))
    assert store.active("loadtest").scope == "api.read"
    assert store.active("gateway").scope == ""
    now[0] = 1005.0
    assert store.active("loadtest").client_id == "*" and ended == [("expire", "loadtest")]
    assert store.remove() == 1 and ended[-1] == ("remove", "*")
    assert store.active("loadtest") is None and len(store) == 0


# -- the real IdP and gateway ------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with threaded_lab(tmp_path_factory.mktemp("profiles")) as lab:
        yield lab


def slo_series(lab: Lab) -> dict[str, float]:
    counts = validations(lab.gateway_url)
    return {result: counts[result] for result in SLO_RESULTS}


def test_the_admin_api_needs_the_secret_and_a_valid_body(lab: Lab, idp: LabAdmin) -> None:
    url = f"{lab.idp_url}/admin/token-profiles"
    body = {"client_id": "loadtest", "expires_in": 30, "scope": "api.read"}
    assert requests.post(url, json=body, timeout=5).status_code == 401
    assert requests.delete(url, timeout=5).status_code == 401
    bad = lab.admin("POST", url, {**body, "expires_in": 99999})
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "invalid_request",
        "error_description": "expires_in: required, seconds > 0 and <= 3600",
    }
    assert lab.admin("POST", url, {**body, "client_id": "intruder"}).status_code == 400
    assert idp.list_token_profiles() == []
    assert lab.token()["scope"] == "api.read api.write"


def test_a_narrowed_scope_is_a_403_insufficient_scope_and_a_deny(lab: Lab, idp: LabAdmin) -> None:
    active_before = metric(lab.idp_url, "tokenslo_faults_active", service="idp")
    idp.set_token_profile("loadtest", 30, scope="api.read")
    assert metric(lab.idp_url, "tokenslo_faults_active", service="idp") == active_before + 1
    issued = lab.token(scope="api.read api.write")  # asked for both, got the narrow one
    assert (
        issued["scope"] == "api.read"
        and unverified_claims(issued["access_token"])["scope"] == "api.read"
    )
    deny = (
        "gateway_authorization_decisions_total",
        {"outcome": "deny", "reason": "insufficient_scope"},
    )
    denied_before = metric(lab.gateway_url, deny[0], **deny[1])
    valid_before = validations(lab.gateway_url)["valid"]
    write = resource_call(lab, "POST", issued["access_token"])
    assert write.status_code == 403
    assert write.headers["WWW-Authenticate"] == WRITE_CHALLENGE
    assert metric(lab.gateway_url, deny[0], **deny[1]) == denied_before + 1
    assert validations(lab.gateway_url)["valid"] == valid_before + 1  # a valid token, denied
    assert resource_call(lab, "GET", issued["access_token"]).status_code == 200
    assert lab.token("gateway")["scope"] == ""  # another client is untouched
    assert idp.clear_token_profile("loadtest") == 1
    assert lab.token()["scope"] == "api.read api.write"
    assert metric(lab.idp_url, "tokenslo_faults_active", service="idp") == active_before


def test_another_audience_is_wrong_audience_once_per_token(lab: Lab, idp: LabAdmin) -> None:
    idp.set_token_profile("*", 30, audience="api://somewhere-else")
    token = lab.token()["access_token"]
    assert unverified_claims(token)["aud"] == "api://somewhere-else"
    before = validations(lab.gateway_url)
    first, again = resource_call(lab, "GET", token), resource_call(lab, "GET", token)
    assert first.status_code == again.status_code == 401
    assert 'error="invalid_token"' in first.headers["WWW-Authenticate"]
    after = validations(lab.gateway_url)
    assert after["wrong_audience"] == before["wrong_audience"] + 1
    assert after["wrong_audience_replayed"] == before["wrong_audience_replayed"] + 1


def test_a_profile_ends_by_itself_at_its_expiry(lab: Lab, idp: LabAdmin) -> None:
    expired_before = metric(
        lab.idp_url, "tokenslo_fault_changes_total", service="idp", action="expire"
    )
    idp.set_token_profile("loadtest", 0.5, audience="api://elsewhere")
    assert unverified_claims(lab.token()["access_token"])["aud"] == "api://elsewhere"
    time.sleep(1.6)  # the housekeeping tick (1 s) ends it without any request
    assert idp.list_token_profiles() == []
    assert metric(lab.idp_url, "tokenslo_fault_changes_total", service="idp", action="expire") == (
        expired_before + 1
    )
    assert unverified_claims(lab.token()["access_token"])["aud"] != "api://elsewhere"


def test_clearing_every_fault_ends_profiles_and_publishes_a_waiting_key(
    lab: Lab, idp: LabAdmin
) -> None:
    """``DELETE /admin/faults`` (the game day's last clean-up) leaves nothing injected."""
    idp.set_token_profile("loadtest", 60, audience="api://elsewhere")
    idp.set_token_profile("*", 60, extra_claims_bytes=100)
    rotated = idp.rotate_keys(publish=False, expires_in=60)
    assert metric(lab.idp_url, "tokenslo_faults_active", service="idp") == 3
    assert idp.clear_faults() == 3
    assert idp.list_token_profiles() == []
    keys = idp.list_keys()
    assert keys["current_kid"] == rotated["kid"]
    assert all(k["published"] for k in keys["keys"])
    assert metric(lab.idp_url, "tokenslo_faults_active", service="idp") == 0
    assert unverified_claims(lab.token()["access_token"])["aud"] != "api://elsewhere"


def test_a_bloated_token_is_answered_431_and_counted_too_large_outside_the_slo(
    lab: Lab, idp: LabAdmin
) -> None:
    idp.set_token_profile("loadtest", 30, extra_claims_bytes=7000)
    token = lab.token()["access_token"]
    assert len(token) > 8192  # past the gateway's default max_token_bytes
    assert len(unverified_claims(token)["groups"]) == len(bloat_groups(7000))
    over = metric(lab.idp_url, "idp_token_size_bytes_count", grant_type="client_credentials")
    under = metric(
        lab.idp_url, "idp_token_size_bytes_bucket", grant_type="client_credentials", le="4096.0"
    )
    assert over > under  # the token-size SLO's bad event: issued over 4096 bytes
    before, slo_before = validations(lab.gateway_url), slo_series(lab)
    answer = resource_call(lab, "GET", token)
    assert answer.status_code == 431
    assert 'error="invalid_request"' in answer.headers["WWW-Authenticate"]
    assert answer.json()["error_description"] == "Authorization header larger than 8192 bytes"
    assert token not in answer.text
    assert validations(lab.gateway_url)["too_large"] == before["too_large"] + 1
    assert slo_series(lab) == slo_before


def test_anyone_sending_a_huge_header_gets_431_and_moves_no_slo(lab: Lab) -> None:
    before, slo_before = validations(lab.gateway_url), slo_series(lab)
    for junk in ("A" * 9000, "not base64 !" * 800):
        assert resource_call(lab, "GET", junk).status_code == 431
    assert validations(lab.gateway_url)["too_large"] == before["too_large"] + 2
    assert slo_series(lab) == slo_before
    code_431 = metric(lab.gateway_url, "gateway_requests_total", code="431")
    assert code_431 >= 2
