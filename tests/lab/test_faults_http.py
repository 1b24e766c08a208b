"""The fault middleware and admin API over real HTTP (a tiny Starlette app under uvicorn)."""

from __future__ import annotations

import json
import time

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.lab.faults import ADMIN_HEADER, FaultEngine, FaultMiddleware, admin_routes

SECRET = "s3cret-admin"
AUTH = {ADMIN_HEADER: SECRET}
PAYLOAD = {"keys": [{"kid": f"k{i}", "kty": "EC", "x": "A" * 43} for i in range(5)]}


class CountStatus:
    """Outer metrics middleware, as the services have: counts the status the client got."""

    def __init__(self, app, counter: Counter):
        self.app, self.counter = app, counter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(("/admin", "/metrics")):
            await self.app(scope, receive, send)
            return

        async def counting_send(message):
            if message["type"] == "http.response.start":
                self.counter.labels(code=str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


def make_app(engine: FaultEngine, registry: CollectorRegistry) -> Starlette:
    async def payload(_: Request) -> Response:
        return JSONResponse(PAYLOAD)

    async def now(_: Request) -> Response:
        return JSONResponse({"now": engine.now()})

    async def echo(request: Request) -> Response:
        return JSONResponse({"received": len(await request.body())})

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain")

    routes = [
        Route("/jwks", payload),
        Route("/now", now),
        Route("/echo", echo, methods=["POST"]),
        Route("/metrics", metrics),
        *admin_routes(engine, SECRET),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(FaultMiddleware, engine=engine, sweep_interval=0.1)
    app.add_middleware(CountStatus, counter=Counter("t_requests", "", ["code"], registry=registry))
    return app


@pytest.fixture
def service(serve_app):
    registry = CollectorRegistry()
    engine = FaultEngine("idp", registry=registry, max_expiry=120)
    server = serve_app(make_app(engine, registry))
    yield server
    engine.stop_sweeper()


def add_fault(base: str, **body) -> dict:
    body.setdefault("expires_in", 30)
    response = requests.post(f"{base}/admin/faults", json=body, headers=AUTH, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def metric(base: str, name: str, labels: dict[str, str]) -> float:
    text = requests.get(f"{base}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_status_fault_returns_that_status_and_is_counted(service):
    base = service.url
    add_fault(base, path="/jwks", effect="status", status=503)
    response = requests.get(f"{base}/jwks", timeout=5)
    assert response.status_code == 503
    assert response.json()["error"] == "fault_injected"
    assert requests.get(f"{base}/now", timeout=5).status_code == 200  # other paths untouched
    assert metric(base, "t_requests_total", {"code": "503"}) == 1
    assert metric(base, "t_requests_total", {"code": "200"}) == 1


def test_method_filter(service):
    base = service.url
    add_fault(base, method="POST", path="/echo", effect="status", status=500)
    assert requests.post(f"{base}/echo", data=b"x", timeout=5).status_code == 500
    assert requests.get(f"{base}/echo", timeout=5).status_code == 405  # the app's own answer


def test_delay_fault_delays_then_passes_through(service):
    base = service.url
    add_fault(base, path="/jwks", effect="delay", delay_seconds=0.6)
    started = time.monotonic()
    response = requests.get(f"{base}/jwks", timeout=5)
    assert time.monotonic() - started >= 0.6
    assert response.json() == PAYLOAD


def test_hang_holds_until_client_timeout_and_counts_499(service, wait_until):
    base = service.url
    add_fault(base, path="/jwks", effect="hang")
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        requests.get(f"{base}/jwks", timeout=1.0)
    assert time.monotonic() - started >= 1.0
    wait_until(lambda: metric(base, "t_requests_total", {"code": "499"}) == 1, timeout=5)
    assert metric(base, "t_requests_total", {"code": "200"}) == 0


def test_hang_ends_with_the_fault_and_keeps_the_request_body(service):
    base = service.url
    add_fault(base, path="/echo", effect="hang", expires_in=1)
    started = time.monotonic()
    # It answers at all (a hang that outlived its fault would end in the client's
    # timeout) and not before the fault expired; how soon after is the machine's load.
    response = requests.post(f"{base}/echo", data=b"x" * 5000, timeout=30)
    assert time.monotonic() - started >= 0.9
    assert response.json() == {"received": 5000}


def test_drop_closes_the_connection_without_a_response(service):
    base = service.url
    add_fault(base, path="/jwks", effect="drop")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/jwks", timeout=5)
    # The server sent nothing, so its own request metrics count nothing, and it still serves.
    assert requests.get(f"{base}/now", timeout=5).status_code == 200
    assert metric(base, "t_requests_total", {"code": "500"}) == 0
    assert metric(base, "t_requests_total", {"code": "200"}) == 1


def test_malformed_truncates_the_json_body(service):
    base = service.url
    full = requests.get(f"{base}/jwks", timeout=5).content
    add_fault(base, path="/jwks", effect="malformed")
    response = requests.get(f"{base}/jwks", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == full[: len(full) // 2]
    assert int(response.headers["content-length"]) == len(full) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


def test_clock_offset_moves_service_time_and_expires(service):
    # The skew is checked under an offset that outlives the checks; expiry is proven by
    # a short offset replacing it, waited for as a condition rather than a fixed sleep.
    base = service.url
    body = {"offset_seconds": -3600, "expires_in": 60}
    assert (
        requests.post(f"{base}/admin/clock", json=body, headers=AUTH, timeout=5).status_code == 201
    )
    skewed = requests.get(f"{base}/now", timeout=5).json()["now"]
    assert abs(skewed - (time.time() - 3600)) < 5
    listed = requests.get(f"{base}/admin/faults", headers=AUTH, timeout=5).json()
    assert listed["clock"]["offset_seconds"] == -3600
    short = {"offset_seconds": -3600, "expires_in": 1}
    set_at = time.time()
    assert (
        requests.post(f"{base}/admin/clock", json=short, headers=AUTH, timeout=5).status_code == 201
    )

    def back_to_real_time() -> bool:
        return abs(requests.get(f"{base}/now", timeout=5).json()["now"] - time.time()) < 5

    deadline = time.monotonic() + 10
    while not back_to_real_time():
        assert time.monotonic() < deadline, "the clock offset never expired"
        time.sleep(0.1)
    assert time.time() >= set_at + 1  # gone by expiry, not earlier
    listed = requests.get(f"{base}/admin/faults", headers=AUTH, timeout=5).json()
    assert listed["clock"] is None


@pytest.mark.parametrize("headers", [{}, {ADMIN_HEADER: "wrong"}, {ADMIN_HEADER: ""}])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/faults"),
        ("POST", "/admin/faults"),
        ("DELETE", "/admin/faults"),
        ("DELETE", "/admin/faults/abc"),
        ("POST", "/admin/clock"),
        ("DELETE", "/admin/clock"),
    ],
)
def test_admin_requires_the_secret(service, headers, method, path):
    body = {"path_prefix": "/jwks", "effect": "drop", "expires_in": 30}
    response = requests.request(method, service.url + path, json=body, headers=headers, timeout=5)
    assert response.status_code == 401
    assert requests.get(f"{service.url}/jwks", timeout=5).status_code == 200  # nothing applied


def test_bad_fault_is_a_400_naming_the_field(service):
    base = service.url
    response = requests.post(
        f"{base}/admin/faults",
        json={"path": "/jwks", "effect": "status", "status": 503, "expires_in": 9999},
        headers=AUTH,
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error_description"].startswith("expires_in:")
    response = requests.post(f"{base}/admin/faults", data=b"{nope", headers=AUTH, timeout=5)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error_description"]


def test_delete_one_and_all(service):
    base = service.url
    fault = add_fault(base, path="/jwks", effect="status", status=503)
    add_fault(base, path="/now", effect="status", status=500)
    url = f"{base}/admin/faults/{fault['id']}"
    assert requests.delete(url, headers=AUTH, timeout=5).status_code == 204
    assert requests.delete(url, headers=AUTH, timeout=5).status_code == 404
    assert requests.get(f"{base}/jwks", timeout=5).status_code == 200
    assert requests.get(f"{base}/now", timeout=5).status_code == 500
    assert requests.delete(f"{base}/admin/faults", headers=AUTH, timeout=5).json() == {"cleared": 1}
    assert requests.get(f"{base}/now", timeout=5).status_code == 200


def test_metrics_count_changes(service):
    base = service.url
    labels = {"service": "idp"}
    fault = add_fault(base, path="/jwks", effect="status", status=503)
    assert metric(base, "tokenslo_fault_changes_total", {**labels, "action": "add"}) == 1
    assert metric(base, "tokenslo_faults_active", labels) == 1
    requests.delete(f"{base}/admin/faults/{fault['id']}", headers=AUTH, timeout=5)
    assert metric(base, "tokenslo_fault_changes_total", {**labels, "action": "remove"}) == 1
    requests.post(
        f"{base}/admin/clock", json={"offset_seconds": 5, "expires_in": 5}, headers=AUTH, timeout=5
    )
    requests.delete(f"{base}/admin/clock", headers=AUTH, timeout=5)
    assert metric(base, "tokenslo_fault_changes_total", {**labels, "action": "clock_set"}) == 1
    assert metric(base, "tokenslo_fault_changes_total", {**labels, "action": "clock_clear"}) == 1
    assert metric(base, "tokenslo_faults_active", labels) == 0


def test_fault_gone_after_expiry_with_nobody_calling_delete(service, wait_until):
    base = service.url
    fault = add_fault(base, path="/jwks", effect="status", status=503, expires_in=1)
    assert fault["expires_at"] == pytest.approx(time.time() + 1, abs=1)
    assert requests.get(f"{base}/jwks", timeout=5).status_code == 503
    # Nobody calls DELETE: the engine expires the fault by itself.
    wait_until(
        lambda: (
            metric(base, "tokenslo_fault_changes_total", {"service": "idp", "action": "expire"})
            == 1
        ),
        timeout=5,
    )
    assert requests.get(f"{base}/admin/faults", headers=AUTH, timeout=5).json()["faults"] == []
    assert requests.get(f"{base}/jwks", timeout=5).status_code == 200
