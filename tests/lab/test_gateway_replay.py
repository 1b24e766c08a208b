"""Replay detection against a real lab: gateway, IdP, Prometheus, Alertmanager, webhook.

A source is the client address + User-Agent. Linux loopback accepts any 127/8 source
address, so a second source is a connection from 127.0.0.2. Tests run in file order:
the forged tokens first, while no replay has been counted, so "raises nothing" is also
checked in Prometheus and in the alerts.
"""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest
import requests
from gateway_fixtures import forge, metric, scrape, threaded_lab, unverified_claims
from joserfc import jwk
from test_lab_e2e import issue

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

ALERT = "GatewayTokenReplaySuspected"
COUNTER = "gateway_token_replay_suspected_total"
OWNER = ("127.0.0.1", "tokenslo-test/owner")
REPLAYER = ("127.0.0.2", "tokenslo-test/replayer")


def call(lab, token: str, source: tuple[str, str], **headers: str) -> int:
    """GET the protected resource with ``token`` from (source address, User-Agent)."""
    address, agent = source
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, trust_env=False, timeout=5) as client:
        response = client.get(
            lab.urls["gateway"] + "/api/resource",
            headers={"Authorization": f"Bearer {token}", "User-Agent": agent, **headers},
        )
    return response.status_code


def replays(lab) -> dict[str, float]:
    return {
        dict(labels)["token_bucket"]: value
        for (name, labels), value in scrape(lab.urls["gateway"]).items()
        if name == COUNTER
    }


def prom(lab, query: str) -> list[dict]:
    response = requests.get(
        lab.urls["prometheus"] + "/api/v1/query", params={"query": query}, timeout=5
    )
    return response.json()["data"]["result"]


def replay_alerts(lab) -> list[dict]:
    alerts = requests.get(lab.urls["prometheus"] + "/api/v1/alerts", timeout=5).json()
    return [a for a in alerts["data"]["alerts"] if a["labels"]["alertname"] == ALERT]


def test_forged_tokens_with_any_jti_from_many_sources_raise_nothing(lab, wait_until):
    """Tokens whose signature does not verify are never tracked: neither a real token's
    jti under a forged signature nor any made-up jti, from any number of sources."""
    assert set(replays(lab)) == set("0123456789abcdef")
    assert set(replays(lab).values()) == {0.0}
    real = issue(lab, "prober")
    header, payload, _signature = real.split(".")
    attacker = jwk.ECKey.generate_key("P-256")
    kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    forged = [f"{header}.{payload}.{'A' * 86}"]  # the real jti, a signature of zeros
    for jti in (unverified_claims(real)["jti"], "replayed-jti", "x" * 40):
        claims = {**unverified_claims(real), "jti": jti}
        forged.append(
            forge({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims, attacker, "ES256")
        )
    query = 'sum(gateway_token_validations_total{result="bad_signature"})'  # over client_id
    before = prom(lab, query)
    bad_before = float(before[0]["value"][1]) if before else 0.0
    sources = [(f"127.0.0.{i}", f"attacker/{i}") for i in range(1, 9)]
    statuses = {call(lab, token, source) for token in forged for source in sources}
    assert statuses == {401}
    assert set(replays(lab).values()) == {0.0}
    expected = bad_before + len(forged) * len(sources)
    wait_until(lambda: float(prom(lab, query)[0]["value"][1]) >= expected, 30)
    # Prometheus has scraped the gateway after every forged call: still no replay, no alert
    (total,) = prom(lab, f"sum({COUNTER})")
    assert float(total["value"][1]) == 0.0
    assert replay_alerts(lab) == []


def test_a_replayed_token_from_a_second_source_raises_the_replay_alert(lab, wait_until):
    series = f'{COUNTER}{{token_bucket="0"}}'
    wait_until(lambda: prom(lab, series), 30)  # every bucket scraped at 0 before the replay
    token = issue(lab, "prober")
    jti = unverified_claims(token)["jti"]
    digest = hashlib.sha256(jti.encode()).hexdigest()
    bucket = digest[0]
    before = replays(lab)
    assert [call(lab, token, OWNER) for _ in range(3)] == [200] * 3
    assert replays(lab) == before  # one source, however often: no replay
    # A caller cannot pick its address: the gateway trusts no X-Forwarded-For (uvicorn's
    # default would, from 127.0.0.1), so the owner's own request stays one source.
    forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.8"}
    assert call(lab, token, OWNER, **forwarded) == 200
    assert replays(lab) == before
    assert call(lab, token, REPLAYER) == 200  # detection counts, it does not block
    assert call(lab, token, REPLAYER) == 200  # the same second source counts once
    after = replays(lab)
    assert after[bucket] == before[bucket] + 1
    assert {b: v for b, v in after.items() if b != bucket} == {
        b: v for b, v in before.items() if b != bucket
    }

    def firing() -> list[dict]:
        return [a for a in replay_alerts(lab) if a["state"] == "firing"]

    (alert,) = wait_until(firing, 30)
    assert alert["labels"]["token_bucket"] == bucket
    assert alert["labels"]["severity"] == "ticket"
    url = lab.urls["webhook"] + f"/notifications?alertname={ALERT}"
    records = wait_until(lambda: requests.get(url, timeout=5).json()["notifications"], 30)
    assert records[0]["status"] == "firing" and records[0]["labels"]["token_bucket"] == bucket
    log = (lab.state_dir / "logs" / "gateway.log").read_text()
    assert f"token replay suspected jti_sha256={digest[:12]} token_bucket={bucket}" in log
    assert token not in log and jti not in log


def test_a_configured_device_header_tells_sources_apart_and_opaque_tokens_count(tmp_path):
    """replay_source_header: one address and User-Agent, two device ids are two sources.
    An opaque token is tracked by the jti its introspection answer carries."""
    with threaded_lab(tmp_path, replay_source_header="X-Device-Id") as gw:
        jwt = gw.token("loadtest", scope="api.read")["access_token"]
        opaque = gw.token("opaque-client")["access_token"]
        assert "." not in opaque

        def sent(token: str, device: str) -> int:
            headers = {"Authorization": f"Bearer {token}", "X-Device-Id": device}
            return requests.get(
                f"{gw.gateway_url}/api/resource", headers=headers, timeout=5
            ).status_code

        def counted() -> float:
            return sum(metric(gw.gateway_url, COUNTER, token_bucket=b) for b in "0123456789abcdef")

        assert [sent(jwt, "phone"), sent(jwt, "phone")] == [200, 200]
        assert counted() == 0
        assert sent(jwt, "laptop") == 200
        assert counted() == 1
        assert [sent(opaque, "phone"), sent(opaque, "phone"), sent(opaque, "laptop")] == [200] * 3
        assert counted() == 2
