"""End-to-end lab checks over real HTTP with real Prometheus and Alertmanager.

Each test leaves the lab as it found it, so the order of the tests does not
matter: faults and offsets are undone in ``finally`` (and carry an expiry anyway),
and the key-rotation test returns only once the gateway accepts tokens signed with
the new key again.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

# revocation_poll_interval of the lab's gateway (lab.default.yaml) + slack for one slow poll.
REVOCATION_BOUND_SECONDS = 2 + 2


def issue(lab, client: str = "loadtest") -> str:
    response = requests.post(
        lab.urls["idp"] + "/token",
        data={"grant_type": "client_credentials"},
        auth=(client, lab.credentials()[client]),
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def call_api(lab, token: str) -> requests.Response:
    return requests.get(
        lab.urls["gateway"] + "/api/resource",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def prom_value(lab, query: str) -> float | None:
    response = requests.get(
        lab.urls["prometheus"] + "/api/v1/query", params={"query": query}, timeout=5
    )
    result = response.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def gateway_validations(lab, result: str) -> float:
    """The gateway's count of ``result`` verdicts, summed over its client_id series."""
    text = requests.get(lab.urls["gateway"] + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_token_validations_total"
        and sample.labels.get("result") == result
    )


def test_revoked_token_is_rejected_within_the_propagation_bound(lab):
    token = issue(lab)
    assert call_api(lab, token).status_code == 200
    revoked_at = time.monotonic()
    response = requests.post(
        lab.urls["idp"] + "/revoke",
        data={"token": token},
        auth=("loadtest", lab.credentials()["loadtest"]),
        timeout=5,
    )
    assert response.status_code == 200
    rejected = None
    while time.monotonic() - revoked_at < REVOCATION_BOUND_SECONDS + 5:
        response = call_api(lab, token)
        if response.status_code == 401:
            rejected = time.monotonic() - revoked_at
            break
        time.sleep(0.1)
    assert rejected is not None, "revoked token still accepted"
    assert rejected <= REVOCATION_BOUND_SECONDS
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert gateway_validations(lab, "revoked") >= 1
    assert call_api(lab, issue(lab)).status_code == 200  # other tokens unaffected


def test_jwks_fault_with_expiry_is_visible_and_then_gone(lab, wait_until):
    # What is checked while the fault is active runs under a fault that outlives it; the
    # expiry is proven by a second, short fault that no check needs alive.
    idp = lab.admin("idp")
    fault = idp.add_fault("status", expires_in=120, path_prefix="/jwks", status=503)
    try:
        listed = idp.list_faults()["faults"]
        assert [f["id"] for f in listed] == [fault["id"]]
        for _ in range(3):
            assert requests.get(lab.urls["idp"] + "/jwks", timeout=5).status_code == 503
        wait_until(lambda: (prom_value(lab, 'tokenslo_faults_active{job="idp"}') or 0) == 1, 10)
        wait_until(
            lambda: (prom_value(lab, 'idp_jwks_requests_total{code="503"}') or 0) >= 3, timeout=10
        )
        idp.remove_fault(fault["id"])
        expired = 'tokenslo_fault_changes_total{job="idp",action="expire"}'
        expired_before = prom_value(lab, expired) or 0
        short = idp.add_fault("status", expires_in=1, path_prefix="/jwks", status=503)
        # Nobody deletes it: the IdP expires it by itself.
        wait_until(lambda: idp.list_faults()["faults"] == [], timeout=10)
        assert time.time() >= short["expires_at"]
        assert requests.get(lab.urls["idp"] + "/jwks", timeout=5).status_code == 200
        wait_until(lambda: prom_value(lab, 'tokenslo_faults_active{job="idp"}') == 0, 10)
        wait_until(lambda: (prom_value(lab, expired) or 0) >= expired_before + 1, timeout=10)
    finally:
        idp.clear_faults()


def test_idp_clock_ahead_beyond_leeway_gives_not_yet_valid(lab, wait_until):
    idp = lab.admin("idp")
    before = gateway_validations(lab, "not_yet_valid")
    idp.set_clock(offset_seconds=600, expires_in=60)  # leeway is 60 s
    try:
        token = issue(lab)
    finally:
        idp.clear_clock()
    response = call_api(lab, token)
    assert response.status_code == 401
    assert gateway_validations(lab, "not_yet_valid") == before + 1
    query = 'sum(gateway_token_validations_total{result="not_yet_valid"})'
    wait_until(lambda: (prom_value(lab, query) or 0) >= before + 1, timeout=10)
    assert call_api(lab, issue(lab)).status_code == 200  # after the offset, all is well


def test_gateway_clock_ahead_gives_expired(lab, wait_until):
    gateway = lab.admin("gateway")
    token = issue(lab)  # ttl 300 s
    before = gateway_validations(lab, "expired")
    gateway.set_clock(offset_seconds=3600, expires_in=60)
    try:
        assert call_api(lab, token).status_code == 401
    finally:
        gateway.clear_clock()
    assert gateway_validations(lab, "expired") == before + 1
    query = 'sum(gateway_token_validations_total{result="expired"})'
    wait_until(lambda: (prom_value(lab, query) or 0) >= before + 1, timeout=10)
    assert call_api(lab, token).status_code == 200


def test_alertmanager_notifications_reach_the_webhook_with_their_time(lab, wait_until):
    url = lab.urls["webhook"] + "/notifications?alertname=TokensloLabAlwaysFiring"
    records = wait_until(lambda: requests.get(url, timeout=5).json()["notifications"], 30)
    record = records[0]
    assert record["status"] == "firing"
    assert record["labels"]["severity"] == "test"
    assert lab.started_at - 5 <= record["received_at"] <= time.time()
    starts = datetime.fromisoformat(record["startsAt"].replace("Z", "+00:00")).timestamp()
    assert starts <= record["received_at"] + 1
    assert lab.notifications_file.read_text().count("TokensloLabAlwaysFiring") >= 1


def test_an_escalation_attempt_reaches_the_webhook_as_the_security_alert(lab, wait_until):
    """The lab's Prometheus loads the security rules; the first refused attempt fires."""
    series = (
        'idp_privilege_escalation_attempts_total{client_id="prober",kind="scope_not_registered"}'
    )
    wait_until(lambda: prom_value(lab, series) == 0, 30)  # scraped at 0 before the attempt
    refused = requests.post(
        lab.urls["idp"] + "/token",
        data={"grant_type": "client_credentials", "scope": "api.read api.write"},
        auth=("prober", lab.credentials()["prober"]),
        timeout=5,
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    url = lab.urls["webhook"] + "/notifications?alertname=IdPPrivilegeEscalationAttempt"
    records = wait_until(lambda: requests.get(url, timeout=5).json()["notifications"], 30)
    assert records[0]["status"] == "firing"
    assert records[0]["labels"]["client_id"] == "prober"
    assert records[0]["labels"]["kind"] == "scope_not_registered"
    assert records[0]["labels"]["severity"] == "ticket"


def test_rotation_without_publish_gives_unknown_kid(lab, wait_until):
    idp = lab.admin("idp")
    before = gateway_validations(lab, "unknown_kid")
    assert call_api(lab, issue(lab)).status_code == 200
    idp.rotate_keys(publish=False, expires_in=60)
    try:
        response = call_api(lab, issue(lab))
        assert response.status_code == 401
        assert gateway_validations(lab, "unknown_kid") == before + 1
        query = 'sum(gateway_token_validations_total{result="unknown_kid"})'
        wait_until(lambda: (prom_value(lab, query) or 0) >= before + 1, timeout=10)
    finally:
        idp.publish_key()
    # Once published, the gateway learns the key on a later refresh (cooldown-bounded).
    wait_until(lambda: call_api(lab, issue(lab)).status_code == 200, timeout=30, interval=1)
