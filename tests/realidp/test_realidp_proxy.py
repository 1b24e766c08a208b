"""``tokenslo proxy`` (the real CLI) in front of oidc-provider, a provider that publishes
absolute URLs and serves introspection and revocation under ``/token/…``.

A client that discovers through the proxy must send every request through it (else
faults injected there never reach it), and a token-endpoint fault must leave
introspection alone.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support import ProxyProcess
from tokenslo.lab.faults import LabAdmin
from tokenslo.proxy.discovery import WELL_KNOWN

if TYPE_CHECKING:
    from conftest import RealIdP

pytestmark = [pytest.mark.realidp, pytest.mark.slow]

ADMIN = secrets.token_urlsafe(24)
SCOPE = "api.read"
ENDPOINTS = ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint")


@pytest.fixture(scope="module")
def proxy(realidp: RealIdP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    log = tmp_path_factory.mktemp("realidp-proxy") / "proxy.log"
    process = ProxyProcess(realidp.url, ADMIN, log).start()
    yield process
    process.stop()


def proxied_requests(proxy: ProxyProcess, **labels: str) -> float:
    """``tokenslo_proxy_requests_total`` summed over every series with these labels."""
    text = requests.get(proxy.url + "/-/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "tokenslo_proxy_requests_total"
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def wait_for(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """The proxy counts a request right after its last byte: poll, do not sleep."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met")
        time.sleep(0.05)


class DiscoveringClient:
    """Plain ``requests``, as a script would write it: discovery, then the URLs it names.
    Every URL requested is recorded so the test can say where the client went."""

    def __init__(self, realidp: RealIdP):
        self.session = requests.Session()
        self.auth = (realidp.credentials.client_id, realidp.credentials.client_secret)
        self.sent: list[str] = []
        self.session.hooks["response"].append(lambda r, *_a, **_k: self.sent.append(r.url))

    def discover(self, base: str) -> dict:
        return self.session.get(base + WELL_KNOWN[1], timeout=10).json()

    def token(self, metadata: dict) -> requests.Response:
        body = {"grant_type": "client_credentials", "scope": SCOPE}
        return self.session.post(metadata["token_endpoint"], data=body, auth=self.auth, timeout=10)

    def introspect(self, metadata: dict, token: str) -> requests.Response:
        url = metadata["introspection_endpoint"]
        return self.session.post(url, data={"token": token}, auth=self.auth, timeout=10)

    def jwks(self, metadata: dict) -> requests.Response:
        return self.session.get(metadata["jwks_uri"], timeout=10)


@pytest.mark.parametrize("well_known", WELL_KNOWN)
def test_discovery_through_the_proxy_names_only_the_proxy_and_the_upstream_issuer(
    realidp: RealIdP, proxy: ProxyProcess, well_known: str
):
    direct = requests.get(realidp.url + well_known, timeout=10).json()
    proxied = requests.get(proxy.url + well_known, timeout=10).json()
    assert proxied["issuer"] == direct["issuer"] == realidp.url
    assert set(proxied) == set(direct)
    for key in ENDPOINTS:
        path = urlsplit(direct[key]).path
        assert proxied[key] == proxy.url + path, key
    # Nothing but the issuer still names the provider, at any depth.
    rest = json.dumps({k: v for k, v in proxied.items() if k != "issuer"})
    assert realidp.url not in rest
    assert proxy.url in rest


def test_a_client_that_follows_discovery_sends_every_request_through_the_proxy(
    realidp: RealIdP, proxy: ProxyProcess
):
    before = proxied_requests(proxy)
    client = DiscoveringClient(realidp)
    metadata = client.discover(proxy.url)
    issued = client.token(metadata)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    introspected = client.introspect(metadata, token)
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    assert client.jwks(metadata).json()["keys"]
    assert len(client.sent) == 4
    assert all(url.startswith(proxy.url + "/") for url in client.sent), client.sent
    wait_for(lambda: proxied_requests(proxy) - before == len(client.sent))
    # Each endpoint has its own bounded label, learned from the provider's metadata.
    assert proxied_requests(proxy, path="/token/introspection", code="200") >= 1
    assert proxied_requests(proxy, path="/token", code="200") >= 1


def test_a_token_endpoint_fault_reaches_the_client_and_spares_introspection(
    realidp: RealIdP, proxy: ProxyProcess
):
    client = DiscoveringClient(realidp)
    metadata = client.discover(proxy.url)
    token = client.token(metadata).json()["access_token"]
    token_path = urlsplit(metadata["token_endpoint"]).path
    assert urlsplit(metadata["introspection_endpoint"]).path.startswith(token_path + "/")
    admin = LabAdmin(proxy.url, ADMIN)
    before = proxied_requests(proxy, path=token_path, code="503")
    admin.add_fault("status", 30, path=token_path, status=503)
    try:
        refused = client.token(metadata)
        assert refused.status_code == 503
        assert refused.json()["error"] == "fault_injected"
        introspected = client.introspect(metadata, token)
        assert introspected.status_code == 200 and introspected.json()["active"] is True
    finally:
        admin.clear_faults()
    wait_for(lambda: proxied_requests(proxy, path=token_path, code="503") == before + 1)
    assert client.token(metadata).status_code == 200  # and back once the fault is gone


def test_no_credential_reaches_the_proxy_log(realidp: RealIdP, proxy: ProxyProcess):
    client = DiscoveringClient(realidp)
    metadata = client.discover(proxy.url)
    token = client.token(metadata).json()["access_token"]
    client.introspect(metadata, token)
    text = Path(proxy.log).read_text()
    assert "POST /token -> 200" in text  # the debug line is there: the check can fail
    for secret in (token, realidp.credentials.client_secret, ADMIN):
        assert secret not in text
