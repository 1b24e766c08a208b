"""Scopes at the real gateway, over HTTP, with tokens from the real IdP: a valid token
without the route's scope is 403 ``insufficient_scope`` and counted as a deny, while its
validation still counts as ``valid``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from gateway_fixtures import Lab, metric, resource_call, scrape, threaded_lab, validations

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]

DECISIONS = "gateway_authorization_decisions_total"
WRITE_CHALLENGE = (
    'Bearer realm="tokenslo", error="insufficient_scope", '
    'error_description="token lacks a required scope", scope="api.write"'
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with threaded_lab(tmp_path_factory.mktemp("gw-scopes")) as lab:
        yield lab


def decisions(lab: Lab) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["outcome"], dict(labels)["reason"]): value
        for (name, labels), value in scrape(lab.gateway_url).items()
        if name == DECISIONS
    }


def test_decision_series_exist_at_zero_before_any_request(lab: Lab) -> None:
    assert decisions(lab) == {("allow", "ok"): 0.0, ("deny", "insufficient_scope"): 0.0}


def test_a_read_only_token_reads_but_cannot_write(lab: Lab) -> None:
    token = lab.token(scope="api.read")["access_token"]
    before, valid = decisions(lab), validations(lab.gateway_url)["valid"]
    read = resource_call(lab, "GET", token)
    assert read.status_code == 200 and read.json()["scope"] == "api.read"
    write = resource_call(lab, "POST", token)
    assert write.status_code == 403
    assert write.headers["WWW-Authenticate"] == WRITE_CHALLENGE
    assert write.json() == {
        "error": "insufficient_scope",
        "error_description": "token lacks a required scope",
    }
    after = decisions(lab)
    assert after[("allow", "ok")] == before[("allow", "ok")] + 1
    assert after[("deny", "insufficient_scope")] == before[("deny", "insufficient_scope")] + 1
    # A deny is an authorization decision, not a validation failure: both were valid.
    assert validations(lab.gateway_url)["valid"] == valid + 2


def test_a_token_with_every_default_scope_reads_and_writes(lab: Lab) -> None:
    token = lab.token()["access_token"]  # no scope asked: all of loadtest's
    for method in ("GET", "POST"):
        response = resource_call(lab, method, token)
        assert response.status_code == 200, method
        assert set(response.json()["scope"].split()) == {"api.read", "api.write"}


def test_a_write_only_token_cannot_read(lab: Lab) -> None:
    token = lab.token(scope="api.write")["access_token"]
    response = resource_call(lab, "GET", token)
    assert response.status_code == 403
    assert 'scope="api.read"' in response.headers["WWW-Authenticate"]
    assert resource_call(lab, "POST", token).status_code == 200


def test_an_opaque_token_is_scoped_by_its_introspection_answer(lab: Lab) -> None:
    token = lab.token("opaque-client")["access_token"]  # registered for api.read only
    assert resource_call(lab, "GET", token).status_code == 200
    denied = resource_call(lab, "POST", token)
    assert denied.status_code == 403
    assert denied.headers["WWW-Authenticate"] == WRITE_CHALLENGE


def test_invalid_tokens_stay_401_and_are_no_authorization_decision(lab: Lab) -> None:
    before = decisions(lab)
    forbidden_before = metric(lab.gateway_url, "gateway_requests_total", code="403")
    for method in ("GET", "POST"):
        response = resource_call(lab, method, "not-a-jwt.x")
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    no_token = requests.post(f"{lab.gateway_url}/api/resource", timeout=10)
    assert no_token.status_code == 401
    assert decisions(lab) == before
    assert metric(lab.gateway_url, "gateway_requests_total", code="403") == forbidden_before


def test_a_route_configured_to_require_no_scope_allows_any_valid_token(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    directory = tmp_path_factory.mktemp("gw-scopes-open")
    with threaded_lab(directory, route_scopes={"POST /api/resource": ()}) as open_lab:
        token = open_lab.token(scope="api.read")["access_token"]
        assert resource_call(open_lab, "POST", token).status_code == 200
        assert decisions(open_lab)[("allow", "ok")] == 1.0
