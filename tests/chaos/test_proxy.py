"""The fault proxy over real HTTP: ``tokenslo proxy`` (a subprocess, the real CLI) in front
of the lab IdP served by uvicorn, and an in-process ``FaultProxy`` in front of a small
echo/streaming upstream for the transport rules (hop-by-hop headers, streaming)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from support import ProxyProcess
from tokenslo.errors import InputError
from tokenslo.lab.faults import ADMIN_HEADER, LabAdmin
from tokenslo.lab.idp.app import create_app
from tokenslo.lab.idp.clients import Client, ClientRegistry, hash_secret
from tokenslo.lab.idp.config import IdPConfig
from tokenslo.prometheus.process import free_port
from tokenslo.proxy import FaultProxy
from tokenslo.proxy.cli import UVICORN_OPTIONS

pytestmark = pytest.mark.lab

ADMIN = "proxy-admin-secret-for-tests-4f1c2a"
CLIENT_SECRET = "svc-secret-never-logged-8d1e0c55aa"
BEARER = "eyJhbGciOiJub25lIn0.bearer-never-logged.c2ln"
QUERY_SECRET = "query-token-never-logged-77b2"


class Served:
    """uvicorn serving ``app`` in a daemon thread of the test process (loopback, free port)."""

    def __init__(self, app, port: int | None = None, **options):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = {"lifespan": "off", **options}
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", **options
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not met within {timeout}s; last: {last!r}")


@pytest.fixture(scope="module")
def idp() -> Iterator[Served]:
    registry = ClientRegistry(
        [Client("svc", hash_secret(CLIENT_SECRET), scopes=("read",), audiences=("api://lab",))]
    )
    port = free_port()
    config = IdPConfig(host="127.0.0.1", port=port, issuer=f"http://127.0.0.1:{port}")
    app = create_app(config, admin_secret="idp-own-admin-secret", clients=registry)
    server = Served(app, port)
    yield server
    server.stop()
    app.state.idp.engine.stop_sweeper()


@pytest.fixture(scope="module")
def proxy(idp: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``tokenslo proxy`` as a subprocess at debug log level; stopped by PID."""
    log_path = tmp_path_factory.mktemp("proxy") / "proxy.log"
    process = ProxyProcess(idp.url, ADMIN, log_path).start()
    try:
        yield {"url": process.url, "proc": process.proc, "log": log_path}
    finally:
        process.stop()


@pytest.fixture
def admin(proxy: dict) -> Iterator[LabAdmin]:
    client = LabAdmin(proxy["url"], ADMIN)
    yield client
    client.clear_faults()


def token(url: str) -> requests.Response:
    return requests.post(
        url + "/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        auth=("svc", CLIENT_SECRET),
        timeout=5,
    )


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with these labels (others summed over)."""
    text = requests.get(url + "/-/metrics", timeout=5).text
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    if not found:
        raise KeyError(f"{name}{labels} not exported")
    return sum(found)


# -- through the proxy to the lab IdP ---------------------------------------------------------


def test_token_issued_through_proxy_validates_against_jwks_through_proxy(proxy, idp):
    response = token(proxy["url"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    jwks = requests.get(proxy["url"] + "/jwks", timeout=5).json()
    claims = jwt.decode(response.json()["access_token"], KeySet.import_key_set(jwks)).claims
    assert claims["iss"] == idp.url  # the upstream's issuer, untouched by the proxy
    assert claims["client_id"] == "svc"


def test_503_fault_on_token_is_seen_by_clients_and_gone_after_expiry(proxy, admin):
    # The checks made while the fault is active run under a fault that outlives them
    # (a loaded machine cannot make it expire half-way); expiry is proven by a second,
    # short fault that no check needs to be alive.
    before = metric(proxy["url"], "tokenslo_proxy_requests_total", code="503")
    fault = admin.add_fault("status", expires_in=60, path="/token", status=503)
    response = token(proxy["url"])
    assert response.status_code == 503
    assert response.json()["error"] == "fault_injected"
    assert requests.get(proxy["url"] + "/jwks", timeout=5).status_code == 200  # scoped to /token
    assert metric(proxy["url"], "tokenslo_proxy_requests_total", code="503") == before + 1
    assert metric(proxy["url"], "tokenslo_faults_active", service="proxy") == 1
    admin.remove_fault(fault["id"])
    expired_before = metric(
        proxy["url"], "tokenslo_fault_changes_total", service="proxy", action="expire"
    )
    short = admin.add_fault("status", expires_in=1, path_prefix="/token", status=503)
    wait_until(lambda: not admin.list_faults()["faults"], 10)
    assert time.time() >= short["expires_at"]  # gone by expiry, not earlier
    assert token(proxy["url"]).status_code == 200
    assert (
        metric(proxy["url"], "tokenslo_fault_changes_total", service="proxy", action="expire")
        == expired_before + 1
    )


def test_delay_fault_adds_latency_until_removed(proxy, admin):
    fault = admin.add_fault("delay", expires_in=30, path="/jwks", delay_seconds=0.4)
    start = time.perf_counter()
    assert requests.get(proxy["url"] + "/jwks", timeout=5).status_code == 200
    assert time.perf_counter() - start >= 0.4
    admin.remove_fault(fault["id"])
    # No stopwatch upper bound: that the fault is gone from the engine the middleware
    # consults is the fact; how fast a loaded machine answers is not.
    assert admin.list_faults()["faults"] == []
    assert requests.get(proxy["url"] + "/jwks", timeout=5).status_code == 200


def test_drop_fault_resets_the_connection(proxy, admin):
    admin.add_fault("drop", expires_in=30, path="/token")
    with pytest.raises(requests.ConnectionError):
        token(proxy["url"])
    assert requests.get(proxy["url"] + "/healthz", timeout=5).status_code == 200


def test_drop_fault_finds_the_socket_even_when_the_client_claims_a_forwarded_address(proxy, admin):
    # uvicorn's proxy_headers would take this header as the peer address and ``drop``
    # would then look for a socket that does not exist (a 500 instead of a reset).
    admin.add_fault("drop", expires_in=30, path="/jwks")
    with pytest.raises(requests.ConnectionError):
        requests.get(proxy["url"] + "/jwks", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5)


def test_hang_fault_holds_until_the_client_leaves_and_counts_499(proxy, admin):
    before = metric(proxy["url"], "tokenslo_proxy_requests_total", code="499")
    admin.add_fault("hang", expires_in=30, path="/jwks")
    start = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.get(proxy["url"] + "/jwks", timeout=0.5)
    assert time.monotonic() - start >= 0.5
    wait_until(
        lambda: metric(proxy["url"], "tokenslo_proxy_requests_total", code="499") == before + 1,
        5,
    )
    assert token(proxy["url"]).status_code == 200  # only /jwks hangs


def test_malformed_fault_truncates_json_with_consistent_length(proxy, admin):
    whole = requests.get(proxy["url"] + "/jwks", timeout=5).content
    admin.add_fault("malformed", expires_in=30, path="/jwks")
    response = requests.get(proxy["url"] + "/jwks", timeout=5)
    assert response.status_code == 200
    assert response.content == whole[: len(whole) // 2]
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_admin_api_requires_the_secret(proxy):
    url = proxy["url"] + "/admin/faults"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={ADMIN_HEADER: "wrong"}, timeout=5).status_code == 401
    body = {"effect": "status", "status": 503, "path": "/token", "expires_in": 5}
    assert requests.post(url, json=body, timeout=5).status_code == 401
    assert requests.get(url, headers={ADMIN_HEADER: ADMIN}, timeout=5).json()["faults"] == []
    assert token(proxy["url"]).status_code == 200  # the unauthenticated POST added nothing


def test_fault_without_expiry_is_rejected_by_the_proxy(proxy):
    body = {"effect": "status", "status": 503, "path": "/token"}
    response = requests.post(
        proxy["url"] + "/admin/faults", json=body, headers={ADMIN_HEADER: ADMIN}, timeout=5
    )
    assert response.status_code == 400
    assert "expires_in: required" in response.json()["error_description"]


def test_clock_offset_is_refused_with_a_pointer_to_libfaketime(admin):
    with pytest.raises(InputError, match="libfaketime"):
        admin.set_clock(offset_seconds=120, expires_in=30)
    assert admin.list_faults()["clock"] is None


def test_upstream_admin_paths_are_forwarded_not_answered(proxy):
    # /admin/keys/rotate belongs to the upstream: its own secret, not the proxy's, applies.
    response = requests.post(
        proxy["url"] + "/admin/keys/rotate", json={}, headers={ADMIN_HEADER: ADMIN}, timeout=5
    )
    assert response.status_code == 401


def test_credentials_never_reach_the_proxy_log(proxy):
    requests.get(
        proxy["url"] + f"/jwks?access_token={QUERY_SECRET}",
        headers={"Authorization": f"Bearer {BEARER}"},
        timeout=5,
    )
    assert token(proxy["url"]).status_code == 200
    requests.get(proxy["url"] + "/admin/faults", headers={ADMIN_HEADER: ADMIN}, timeout=5)
    time.sleep(0.3)  # let the subprocess flush its log lines
    text = proxy["log"].read_text()
    basic = base64.b64encode(f"svc:{CLIENT_SECRET}".encode()).decode()
    assert "GET /jwks -> 200" in text  # the debug request line is there: the check can fail
    assert "POST /token -> 200" in text
    for secret in (BEARER, QUERY_SECRET, CLIENT_SECRET, basic, ADMIN):
        assert secret not in text


# -- transport rules against a small upstream (in-process proxy) ------------------------------


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": {k: v for k, v in request.headers.items()},
            "body_length": len(body),
            "body_sha_prefix": body[:16].decode("latin-1"),
        },
        headers={"Connection": "close, X-Upstream-Hop", "X-Upstream-Hop": "1", "X-End": "2"},
    )


# Released by the test once it holds the first chunk: a buffering proxy would hold that
# chunk back until the upstream finished, which it only does on release (or on giving up,
# which it then says in its last chunk). Causality, not a stopwatch.
STREAM_RELEASE = threading.Event()
# Set by the test after the proxy's 504: the upstream answers only then (or gives up).
SLOW_RELEASE = threading.Event()
SLOW_ANSWERED = threading.Event()
GIVE_UP = 20.0


async def _released(event: threading.Event) -> bool:
    import asyncio

    deadline = time.monotonic() + GIVE_UP
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return event.is_set()


async def stream(_request: Request) -> StreamingResponse:
    async def chunks():
        yield b"chunk-0:first\n"
        released = await _released(STREAM_RELEASE)
        for i in range(1, 10):
            yield f"chunk-{i}:{'released' if released else 'gave-up'}\n".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def set_cookie(_request: Request) -> JSONResponse:
    response = JSONResponse({"set": True})
    response.set_cookie("session", "for-one-client-only", path="/")
    return response


async def slow(_request: Request) -> JSONResponse:
    await _released(SLOW_RELEASE)
    SLOW_ANSWERED.set()
    return JSONResponse({"slow": True})


class ShortBody:
    """Raw ASGI: promises 1000 bytes, sends 10, so the upstream fails mid-response."""

    async def __call__(self, _scope, _receive, send) -> None:
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"0123456789", "more_body": False})


UPLOADS: list[str] = []


async def upload(request: Request) -> JSONResponse:
    from starlette.requests import ClientDisconnect

    try:
        body = await request.body()
    except ClientDisconnect:
        UPLOADS.append("disconnected")
        raise
    UPLOADS.append(f"complete:{len(body)}")
    return JSONResponse({"length": len(body)})


@pytest.fixture(scope="module")
def echo_proxy() -> Iterator[dict]:
    upstream_app = Starlette(
        routes=[
            Route("/base/echo", echo, methods=["GET", "POST", "PUT"]),
            Route("/base/stream", stream),
            Route("/base/cookie", set_cookie),
            Route("/base/slow", slow),
            Route("/base/short", ShortBody()),
            Route("/base/upload", upload, methods=["POST"]),
        ]
    )
    upstream = Served(upstream_app)
    app = FaultProxy(upstream.url + "/base", ADMIN, timeout=5)
    front = Served(app, **UVICORN_OPTIONS)  # served as ``tokenslo proxy`` serves it
    yield {"url": front.url, "upstream": upstream.url, "app": app}
    front.stop()
    upstream.stop()
    app.engine.stop_sweeper()


def test_hop_by_hop_headers_are_not_forwarded_either_way(echo_proxy):
    response = requests.get(
        echo_proxy["url"] + "/echo?a=1&b=%2F",
        headers={
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "secret-hop",
            "Keep-Alive": "timeout=5",
            "Proxy-Authorization": "Basic bm90LWZvcndhcmRlZA==",
            "X-End-To-End": "kept",
        },
        timeout=5,
    )
    seen = response.json()
    assert seen["path"] == "/base/echo" and seen["query"] == "a=1&b=%2F"
    headers = seen["headers"]
    assert headers["x-end-to-end"] == "kept"
    for hop in ("x-client-hop", "keep-alive", "proxy-authorization", "transfer-encoding"):
        assert hop not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == echo_proxy["url"].removeprefix("http://")
    assert headers["host"] == echo_proxy["upstream"].removeprefix("http://")
    assert "x-upstream-hop" not in response.headers  # named by the upstream's Connection
    assert response.headers["x-end"] == "2"


def test_request_bodies_are_streamed_with_their_framing(echo_proxy):
    payload = os.urandom(256 * 1024)
    fixed = requests.post(echo_proxy["url"] + "/echo", data=payload, timeout=10).json()
    assert fixed["body_length"] == len(payload)
    assert fixed["headers"]["content-length"] == str(len(payload))

    def generator():
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    chunked = requests.put(echo_proxy["url"] + "/echo", data=generator(), timeout=10).json()
    assert chunked["body_length"] == len(payload)
    assert chunked["headers"]["transfer-encoding"] == "chunked"
    plain_get = requests.get(echo_proxy["url"] + "/echo", timeout=5).json()
    assert "transfer-encoding" not in plain_get["headers"]
    assert "content-length" not in plain_get["headers"]


def test_responses_are_streamed_not_buffered(echo_proxy):
    STREAM_RELEASE.clear()
    try:
        with requests.get(echo_proxy["url"] + "/stream", stream=True, timeout=30) as response:
            lines = response.iter_lines()
            first = next(lines)  # the upstream sends the rest only after this arrived
            STREAM_RELEASE.set()
            rest = list(lines)
    finally:
        STREAM_RELEASE.set()
    assert first == b"chunk-0:first"
    assert rest == [f"chunk-{i}:released".encode() for i in range(1, 10)]


def test_unreachable_upstream_is_a_502_and_counted(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    app = FaultProxy(dead, ADMIN, timeout=2)
    front = Served(app, **UVICORN_OPTIONS)
    try:
        response = requests.get(front.url + "/anything", timeout=5)
        assert response.status_code == 502
        assert response.json()["error_description"] == "upstream unreachable"
        assert metric(front.url, "tokenslo_proxy_upstream_errors_total", reason="connect") == 1
        assert metric(front.url, "tokenslo_proxy_requests_total", code="502") == 1
    finally:
        front.stop()
        app.engine.stop_sweeper()


def test_upstream_cookies_are_never_replayed_to_other_clients(echo_proxy):
    first = requests.get(echo_proxy["url"] + "/cookie", timeout=5)
    assert first.cookies.get("session") == "for-one-client-only"  # passed through to its client
    other = requests.get(echo_proxy["url"] + "/echo", timeout=5).json()
    assert "cookie" not in other["headers"]  # a shared client cookie jar would add it here


def test_no_request_headers_are_invented_for_the_client(echo_proxy):
    conn = http.client.HTTPConnection("127.0.0.1", int(echo_proxy["url"].rsplit(":", 1)[1]))
    try:
        conn.putrequest("GET", "/echo", skip_accept_encoding=True)
        conn.endheaders()
        seen = json.loads(conn.getresponse().read())["headers"]
    finally:
        conn.close()
    assert set(seen) == {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}


def test_upstream_timeout_is_a_504_and_counted(echo_proxy):
    app = FaultProxy(echo_proxy["upstream"] + "/base", ADMIN, timeout=0.5)
    front = Served(app, **UVICORN_OPTIONS)
    try:
        SLOW_RELEASE.clear()
        SLOW_ANSWERED.clear()
        response = requests.get(front.url + "/slow", timeout=30)
        assert not SLOW_ANSWERED.is_set()  # the 504 came while the upstream still worked
        SLOW_RELEASE.set()
        assert response.status_code == 504
        assert response.json()["error_description"] == "upstream timed out"
        assert metric(front.url, "tokenslo_proxy_upstream_errors_total", reason="timeout") == 1
        assert requests.get(front.url + "/echo", timeout=5).status_code == 200  # still serving
    finally:
        SLOW_RELEASE.set()
        front.stop()


def test_upstream_failing_mid_response_cuts_the_client_and_is_counted(echo_proxy):
    url = echo_proxy["url"]
    before = metric(url, "tokenslo_proxy_upstream_errors_total", reason="protocol")
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url + "/short", timeout=5).content  # noqa: B018
    wait_until(
        lambda: metric(url, "tokenslo_proxy_upstream_errors_total", reason="protocol") > before, 5
    )
    assert requests.get(url + "/echo", timeout=5).status_code == 200


def test_client_leaving_mid_body_aborts_the_upstream_request(echo_proxy):
    UPLOADS.clear()
    port = int(echo_proxy["url"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: proxy\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000
        )
        wait_until(lambda: echo_proxy["app"].forwarder.session is not None, 5)
        time.sleep(0.3)  # the upstream has the first bytes and waits for the rest
    # Without the abort the upstream would wait for 99000 bytes until its own timeout.
    assert wait_until(lambda: UPLOADS, 5) == ["disconnected"]


def test_cli_refuses_missing_secret_and_remote_listen(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "TOKENSLO_ADMIN_SECRET"}
    base = [sys.executable, "-m", "tokenslo", "proxy", "--upstream", "http://127.0.0.1:1"]
    no_secret = subprocess.run(base, env=env, capture_output=True, text=True, timeout=30)
    assert no_secret.returncode == 2
    assert "TOKENSLO_ADMIN_SECRET" in no_secret.stderr and "Traceback" not in no_secret.stderr
    env["TOKENSLO_ADMIN_SECRET"] = ADMIN
    remote = subprocess.run(
        [*base, "--listen", "0.0.0.0:9999"], env=env, capture_output=True, text=True, timeout=30
    )
    assert remote.returncode == 2 and "--allow-remote" in remote.stderr
    bad_url = subprocess.run(
        [sys.executable, "-m", "tokenslo", "proxy", "--upstream", "idp.example"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad_url.returncode == 2 and "--upstream" in bad_url.stderr
