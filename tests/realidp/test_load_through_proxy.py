"""A load test through ``tokenslo proxy`` in front of npm oidc-provider: a 50% 503 fault on
the token endpoint, injected at the proxy, is what the load test sees — nothing goes
around the proxy — and the gate fails (exit 1)."""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support import ProxyProcess, write_target
from tokenslo.lab.faults import LabAdmin

pytestmark = [pytest.mark.realidp, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
USERS = 4


def proxy_counts(proxy: ProxyProcess, endpoint: str) -> dict[str, float]:
    """code → requests the proxy answered on ``endpoint`` (its own /-/metrics)."""
    text = requests.get(proxy.url + "/-/metrics", timeout=5).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "tokenslo_proxy_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["endpoint"] == endpoint:
                code = sample.labels["code"]
                counts[code] = counts.get(code, 0.0) + sample.value
    return counts


def test_half_the_token_requests_fail_at_the_proxy_and_the_gate_fails(realidp, tmp_path):
    admin_secret = secrets.token_urlsafe(24)
    proxy = ProxyProcess(realidp.url, admin_secret, tmp_path / "proxy.log").start()
    try:
        client = {"client_id": realidp.credentials.client_id, "secret": {"env": "IDP_SECRET"}}
        target = write_target(
            tmp_path / "target.yaml",
            {"issuer": realidp.url, "discovery_url": proxy.url, "clients": {"load": client}},
        )
        fault = LabAdmin(proxy.url, admin_secret).add_fault(
            "status", 120, path="/token", status=503, probability=0.5
        )
        before = proxy_counts(proxy, "token_endpoint")
        out = tmp_path / "gate.json"
        done = subprocess.run(
            [sys.executable, "-m", "tokenslo", "loadtest", "run", "--scenario", "issuance",
             "--users", str(USERS), "--spawn-rate", str(USERS), "--duration", "10s",
             "--target", str(target), "--gate", str(REPO / "slo" / "real-idp"),
             "--json", str(out)],
            env={**os.environ, "IDP_SECRET": realidp.credentials.client_secret},
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        after = proxy_counts(proxy, "token_endpoint")
        LabAdmin(proxy.url, admin_secret).remove_fault(fault["id"])
    finally:
        proxy.stop()
    assert done.returncode == 1, done.stdout + done.stderr
    data = json.loads(out.read_text())
    issued = data["requests"]["token:client_credentials"]
    sent, failed = issued["requests"], issued["failures"]
    # A 50 % coin per request: the failed share lies within 4.5 standard deviations of
    # one half (chance of falling outside: under 1 in 100 000), however many requests a
    # loaded machine managed to send in the 10 s; 200 keep that band under ±16 %.
    assert sent >= 200, issued
    assert abs(failed / sent - 0.5) <= 4.5 * math.sqrt(0.25 / sent), issued
    # Every request went through the proxy: its counters agree with the client's, up to
    # the requests in flight when Locust stopped its users (at most one per user).
    seen = {code: after.get(code, 0.0) - before.get(code, 0.0) for code in after}
    print(f"client: {failed}/{sent} failed ({failed / sent:.1%}); proxy: {seen}")
    assert abs(sum(seen.values()) - sent) <= USERS, (seen, issued)
    assert abs(seen.get("503", 0.0) - failed) <= USERS, (seen, issued)
    failing = {c["slo"]: c for c in data["checks"] if c["state"] == "fail"}
    assert "proxy-token-availability" in failing, data["checks"]
    assert "503" in done.stdout  # the reason is shown with the failed check
