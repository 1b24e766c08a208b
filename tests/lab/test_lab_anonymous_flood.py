"""Must show 2 of issue 11: an anonymous flood beside real traffic pages nobody.

A real lab (IdP, gateway, Prometheus with the rules generated from ``slo/`` in
real time, Alertmanager, webhook). For 150 s, every second: four calls with a
genuine token, one forged token with an unknown kid and a zero signature (the
issue's reproducer, which used to page in 77 s), one token nested 2,500
levels deep (which used to answer 500 and page ``gateway-availability``) and one
credential over the gateway's header limit (answered 431, ``too_large``).
Afterwards no burn-rate alert was ever pending or firing, nothing reached the
webhook, and the gateway counted no 5xx: the junk sits under its own labels.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
from gateway_fixtures import b64, segment
from test_gateway_hostile import FORGED_UNKNOWN_KID, nested
from test_lab_e2e import issue, prom_value

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow, pytest.mark.timeout(400)]

SECONDS = 150
VALID_PER_SECOND = 4


def nested_token() -> str:
    return f"{segment({'alg': 'ES256', 'typ': 'at+jwt', 'kid': 'k'})}.{b64(nested())}.{b64(b'0')}"


def gateway_samples(lab) -> dict[str, float]:
    """``gateway_*_total`` samples of the gateway's /metrics as ``{'name{labels}': value}``."""
    text = requests.get(lab.urls["gateway"] + "/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line.startswith("gateway_") and "_total" in line:
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def server_errors(lab) -> float:
    return sum(
        v for k, v in gateway_samples(lab).items() if k.startswith('gateway_requests_total{code="5')
    )


def test_anonymous_flood_beside_real_traffic_pages_nobody(lab, wait_until) -> None:
    token = issue(lab)  # ttl 300 s: outlives the run
    junk = {
        "forged-unknown-kid": FORGED_UNKNOWN_KID,
        "nested": nested_token(),
        "too-large": "A" * 9000,  # over max_token_bytes (8192)
    }
    api = lab.urls["gateway"] + "/api/resource"
    statuses: dict[str, list[int]] = {"valid": [], **{name: [] for name in junk}}
    with requests.Session() as session:
        start = time.monotonic()
        for second in range(SECONDS):
            for _ in range(VALID_PER_SECOND):
                answer = session.get(api, headers={"Authorization": f"Bearer {token}"}, timeout=5)
                statuses["valid"].append(answer.status_code)
            for name, value in junk.items():
                answer = session.get(api, headers={"Authorization": f"Bearer {value}"}, timeout=5)
                statuses[name].append(answer.status_code)
            pause = start + second + 1 - time.monotonic()  # pacing, not an assertion
            if pause > 0:
                time.sleep(pause)

    assert set(statuses["valid"]) == {200}
    assert set(statuses["forged-unknown-kid"]) == {401}
    assert set(statuses["nested"]) == {401}
    assert set(statuses["too-large"]) == {431}
    assert server_errors(lab) == 0

    # Prometheus has scraped all of it, and the rules have evaluated over it since.
    unconfirmed = 'sum(gateway_token_validations_total{result="unknown_kid_unconfirmed"})'
    wait_until(lambda: (prom_value(lab, unconfirmed) or 0) >= SECONDS, timeout=30)
    evaluated = time.time()  # Prometheus runs on this machine's clock
    wait_until(
        lambda: any(
            _evaluated_after(group, evaluated)
            for group in _rule_groups(lab)
            if group["name"] == "tokenslo-slo-token-validation-success"
        ),
        timeout=90,
        interval=1,
    )
    ever = prom_value(lab, 'count(max_over_time(ALERTS{alertname="SLOErrorBudgetBurn"}[10m]))')
    assert ever is None, "a burn-rate alert was pending or firing during the flood"
    notifications = requests.get(
        lab.urls["webhook"] + "/notifications",
        params={"alertname": "SLOErrorBudgetBurn"},
        timeout=5,
    ).json()["notifications"]
    assert notifications == []
    # the junk was judged, under labels outside the SLIs
    malformed = prom_value(lab, 'sum(gateway_token_validations_total{result="malformed"})') or 0
    assert malformed >= SECONDS
    too_large = prom_value(lab, 'sum(gateway_token_validations_total{result="too_large"})') or 0
    assert too_large >= SECONDS


def _rule_groups(lab) -> list[dict]:
    answer = requests.get(lab.urls["prometheus"] + "/api/v1/rules", timeout=5).json()
    return answer["data"]["groups"]


def _evaluated_after(group: dict, when: float) -> bool:
    return datetime.fromisoformat(group["lastEvaluation"]).timestamp() > when


def test_lab_services_get_their_secrets_as_files_not_in_the_environment(lab) -> None:
    secret = lab.admin_secret()
    for name in ("idp", "gateway", "webhook"):
        pid = lab.components[name].pid
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"TOKENSLO_ADMIN_SECRET" not in environ and secret.encode() not in environ
    for name in ("idp", "gateway"):
        cmdline = Path(f"/proc/{lab.components[name].pid}/cmdline").read_bytes().split(b"\0")
        assert b"--admin-secret-file" in cmdline and secret.encode() not in b" ".join(cmdline)


def test_the_webhook_records_alertmanager_but_refuses_a_forged_post(lab, wait_until) -> None:
    url = lab.urls["webhook"]
    # Alertmanager authenticates with the state dir's secret: the test alert arrives
    wait_until(
        lambda: requests.get(
            url + "/notifications", params={"alertname": "TokensloLabAlwaysFiring"}, timeout=5
        ).json()["notifications"],
        timeout=60,
        interval=1,
    )
    forged = {"alerts": [{"status": "firing", "labels": {"alertname": "ForgedPage"}}]}
    assert requests.post(url + "/alerts", json=forged, timeout=5).status_code == 401
    recorded = requests.get(url + "/notifications", params={"alertname": "ForgedPage"}, timeout=5)
    assert recorded.json()["notifications"] == []


def test_prometheus_admin_and_lifecycle_apis_are_off(lab) -> None:
    prometheus = lab.urls["prometheus"]
    assert requests.post(prometheus + "/-/reload", timeout=5).status_code != 200
    snapshot = requests.post(prometheus + "/api/v1/admin/tsdb/snapshot", timeout=5)
    assert snapshot.status_code != 200
    assert requests.get(prometheus + "/-/healthy", timeout=5).status_code == 200  # control
