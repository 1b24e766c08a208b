"""Whoever discovers through the fault proxy stays behind it.

Pure rules of ``tokenslo.proxy.discovery`` first, then a real proxy (uvicorn, served as
``tokenslo proxy`` serves it) in front of a small upstream that publishes absolute URLs,
compresses its metadata whatever the client asked, and redirects to itself.
"""

from __future__ import annotations

import gzip
import json
import secrets
from collections.abc import Iterator

import pytest
import requests
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from test_proxy import ADMIN, Served, ShortBody, metric

from tokenslo.lab.faults import LabAdmin
from tokenslo.proxy import FaultProxy
from tokenslo.proxy.cli import UVICORN_OPTIONS
from tokenslo.proxy.discovery import (
    OTHER,
    WELL_KNOWN,
    PathLabels,
    Upstream,
    discovery_name,
    proxy_origin,
    rewrite_body,
    rewrite_document,
    rewrite_location,
)

pytestmark = pytest.mark.lab

UP = "https://idp.example:8443"
PROXY = "http://127.0.0.1:9480"


def metadata(base: str) -> dict:
    return {
        "issuer": base,
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/jwks",
        "introspection_endpoint": f"{base}/token/introspection",
        "revocation_endpoint": f"{base}/token/revocation",
        "mtls_endpoint_aliases": {"token_endpoint": f"{base}/mtls/token"},
        "service_documentation": "https://docs.example/idp",
        "grant_types_supported": ["client_credentials"],
        "end_session_endpoint": f"{base}/session/end?x=1",
    }


# -- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/.well-known/oauth-authorization-server", WELL_KNOWN[0]),
        ("/.well-known/oauth-authorization-server/tenant-a", WELL_KNOWN[0]),  # RFC 8414 §3
        ("/.well-known/openid-configuration", WELL_KNOWN[1]),
        ("/realms/x/.well-known/openid-configuration", WELL_KNOWN[1]),  # OpenID: appended
        ("/token", None),
        ("/.well-known/jwks.json", None),
        ("/.well-known/openid-configurationX", None),
    ],
)
def test_discovery_paths_are_recognised_in_both_placements(path, name):
    assert discovery_name(path) == name


def test_every_upstream_url_moves_behind_the_proxy_except_issuer():
    doc, moved = rewrite_document(metadata(UP), Upstream.parse(UP), PROXY)
    assert doc["issuer"] == UP  # tokens carry it
    assert doc["token_endpoint"] == f"{PROXY}/token"
    assert doc["jwks_uri"] == f"{PROXY}/jwks"
    assert doc["introspection_endpoint"] == f"{PROXY}/token/introspection"
    assert doc["revocation_endpoint"] == f"{PROXY}/token/revocation"
    assert doc["mtls_endpoint_aliases"] == {"token_endpoint": f"{PROXY}/mtls/token"}
    assert doc["end_session_endpoint"] == f"{PROXY}/session/end?x=1"
    assert doc["service_documentation"] == "https://docs.example/idp"  # another origin
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert "/token" in moved and "/session/end" in moved


@pytest.mark.parametrize(
    ("url", "moves"),
    [
        ("https://IDP.example:8443/token", True),  # host names are case-insensitive
        ("https://idp.example/token", False),  # other port
        ("http://idp.example:8443/token", False),  # other scheme
        ("https://idp.example:8443.evil.example/token", False),
        ("https://idp.example:8443@evil.example/token", False),
    ],
)
def test_only_the_upstreams_exact_origin_moves(url, moves):
    doc, _ = rewrite_document({"token_endpoint": url}, Upstream.parse(UP), PROXY)
    assert (doc["token_endpoint"] == f"{PROXY}/token") is moves


def test_an_upstream_path_prefix_is_taken_off_and_urls_outside_it_stay():
    upstream = Upstream.parse("https://kc.example/realms/lab/")
    doc, _ = rewrite_document(
        {
            "issuer": "https://kc.example/realms/lab",
            "token_endpoint": "https://kc.example/realms/lab/protocol/openid-connect/token",
            "jwks_uri": "https://kc.example/realms/labx/certs",  # not under /realms/lab/
        },
        upstream,
        PROXY,
    )
    assert doc["issuer"] == "https://kc.example/realms/lab"
    assert doc["token_endpoint"] == f"{PROXY}/protocol/openid-connect/token"
    assert doc["jwks_uri"] == "https://kc.example/realms/labx/certs"


def test_compressed_documents_are_decoded_and_unrelated_bodies_left_alone():
    raw = json.dumps(metadata(UP)).encode()
    for encoding, body in (("gzip", gzip.compress(raw)), ("identity", raw), ("", raw)):
        rewritten = rewrite_body(body, encoding, Upstream.parse(UP), PROXY)
        assert rewritten is not None, encoding
        assert json.loads(rewritten[0])["jwks_uri"] == f"{PROXY}/jwks"
    assert rewrite_body(raw, "br", Upstream.parse(UP), PROXY) is None  # unknown: untouched
    assert rewrite_body(b"[1, 2]", "", Upstream.parse(UP), PROXY) is None
    assert rewrite_body(b"not json", "", Upstream.parse(UP), PROXY) is None
    nothing_to_move = json.dumps({"issuer": UP}).encode()
    assert rewrite_body(nothing_to_move, "", Upstream.parse(UP), PROXY) is None


def test_location_headers_pointing_at_the_upstream_move():
    headers = [(b"location", f"{UP}/login?next=%2F".encode()), (b"x-other", f"{UP}/".encode())]
    out = rewrite_location(headers, Upstream.parse(UP), PROXY)
    assert out == [(b"location", f"{PROXY}/login?next=%2F".encode()), headers[1]]
    elsewhere = [(b"location", b"https://elsewhere.example/x")]
    assert rewrite_location(elsewhere, Upstream.parse(UP), PROXY) == elsewhere


def test_the_proxy_origin_is_the_clients_host_or_the_listen_address():
    base = {"scheme": "http", "server": ("127.0.0.1", 9480)}
    assert (
        proxy_origin({**base, "headers": [(b"host", b"proxy.test:81")]}) == "http://proxy.test:81"
    )
    for bad in (b"evil.example/path", b"a b", b"x\r\ny", b"", b"h@evil"):
        assert proxy_origin({**base, "headers": [(b"host", bad)]}) == "http://127.0.0.1:9480"
    assert proxy_origin({**base, "headers": []}) == "http://127.0.0.1:9480"


def test_path_labels_are_bounded_whatever_callers_send():
    labels = PathLabels(limit=3)
    assert labels.learn(["/token", "/jwks", "/token", "/a", "/b", "/c"]) == [
        "/token",
        "/jwks",
        "/a",
    ]
    assert labels.label("/token") == "/token"
    assert labels.label("/b") == OTHER
    assert labels.label("/.well-known/openid-configuration/../x") == WELL_KNOWN[1]
    assert labels.label("/realms/x/.well-known/openid-configuration") == WELL_KNOWN[1]
    assert {labels.label(f"/{secrets.token_hex(8)}") for _ in range(100)} == {OTHER}
    assert set(labels.values()) == {*WELL_KNOWN, "/token", "/jwks", "/a", OTHER}


# -- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def published() -> Iterator[dict]:
    """An upstream that advertises its own absolute URLs and gzips its metadata."""
    state: dict = {}

    async def document(request: Request) -> Response:
        state["accept_encoding"] = request.headers.get("accept-encoding")
        body = gzip.compress(json.dumps(metadata(state["url"])).encode())
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Encoding": "gzip", "ETag": '"upstream-bytes"'},
        )

    async def jwks(_request: Request) -> Response:
        return JSONResponse({"keys": []})

    async def token(_request: Request) -> Response:
        return JSONResponse({"access_token": "opaque", "token_type": "Bearer"})

    async def login(_request: Request) -> Response:
        return RedirectResponse(f"{state['url']}/jwks", status_code=302)

    routes = [
        Route("/.well-known/oauth-authorization-server", document),
        Route("/.well-known/oauth-authorization-server/tenant-a", document),
        Route("/.well-known/openid-configuration", document),
        Route("/jwks", jwks),
        Route("/token", token, methods=["POST"]),
        Route("/token/introspection", token, methods=["POST"]),
        Route("/login", login),
        Route("/.well-known/openid-configuration/short", ShortBody()),
    ]
    upstream = Served(Starlette(routes=routes))
    state["url"] = upstream.url
    app = FaultProxy(upstream.url, ADMIN, timeout=5)
    front = Served(app, **{**UVICORN_OPTIONS, "lifespan": "on"})
    yield {"url": front.url, "upstream": upstream.url, "state": state, "app": app}
    front.stop()
    upstream.stop()


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/tenant-a",
        "/.well-known/openid-configuration",
    ],
)
def test_discovery_through_the_proxy_points_only_at_the_proxy(published, path):
    response = requests.get(published["url"] + path, timeout=5)
    assert response.status_code == 200
    assert published["state"]["accept_encoding"] == "identity"  # asked uncompressed
    assert "content-encoding" not in response.headers  # and sent uncompressed
    assert "etag" not in response.headers  # the upstream's ETag described other bytes
    assert int(response.headers["content-length"]) == len(response.content)
    doc = response.json()
    assert doc["issuer"] == published["upstream"]
    for key in ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"):
        assert doc[key].startswith(published["url"] + "/"), (key, doc[key])
    assert doc["mtls_endpoint_aliases"]["token_endpoint"] == published["url"] + "/mtls/token"


def test_a_redirect_to_the_upstream_stays_behind_the_proxy(published):
    response = requests.get(published["url"] + "/login", allow_redirects=False, timeout=5)
    assert response.status_code == 302
    assert response.headers["location"] == published["url"] + "/jwks"


def test_other_bodies_pass_byte_for_byte(published):
    direct = requests.post(published["upstream"] + "/token", timeout=5)
    proxied = requests.post(published["url"] + "/token", timeout=5)
    assert proxied.content == direct.content
    assert proxied.headers["content-length"] == direct.headers["content-length"]


def test_metrics_label_known_endpoints_and_put_everything_else_in_other(published):
    url = published["url"]
    # Learned at startup from the upstream's documents, before any client discovered.
    assert metric(url, "tokenslo_proxy_requests_total", code="200", path="/jwks") >= 0
    requests.get(url + "/jwks", timeout=5)
    for _ in range(30):
        requests.get(f"{url}/{secrets.token_hex(6)}", timeout=5)
    requests.get(url + "/.well-known/oauth-authorization-server/" + secrets.token_hex(6), timeout=5)
    text = requests.get(url + "/-/metrics", timeout=5).text
    paths = {
        line.split('path="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("tokenslo_proxy_") and 'path="' in line
    }
    assert paths <= {*WELL_KNOWN, "/token", "/jwks", "/token/introspection", "/token/revocation",
                     "/mtls/token", "/session/end", OTHER}  # fmt: skip
    assert metric(url, "tokenslo_proxy_requests_total", path=OTHER, code="404") >= 30
    assert metric(url, "tokenslo_proxy_requests_total", path="/jwks", code="200") >= 1


def test_an_exact_token_fault_leaves_introspection_alone_and_a_prefix_does_not(published):
    admin = LabAdmin(published["url"], ADMIN)
    try:
        admin.add_fault("status", 30, path="/token", status=503)
        assert requests.post(published["url"] + "/token", timeout=5).status_code == 503
        assert (
            requests.post(published["url"] + "/token/introspection", timeout=5).status_code == 200
        )
        admin.clear_faults()
        admin.add_fault("status", 30, path_prefix="/token", status=503)
        assert (
            requests.post(published["url"] + "/token/introspection", timeout=5).status_code == 503
        )
        listed = admin.list_faults()["faults"]
        assert [(f["match"], f["path_prefix"]) for f in listed] == [("prefix", "/token")]
    finally:
        admin.clear_faults()


def test_a_document_cut_short_upstream_is_a_502_and_counted(published):
    url = published["url"]
    before = metric(url, "tokenslo_proxy_upstream_errors_total", reason="protocol")
    response = requests.get(url + "/.well-known/openid-configuration/short", timeout=5)
    assert response.status_code == 502
    assert metric(url, "tokenslo_proxy_upstream_errors_total", reason="protocol") == before + 1
    assert metric(url, "tokenslo_proxy_requests_total", path=WELL_KNOWN[1], code="502") >= 1
