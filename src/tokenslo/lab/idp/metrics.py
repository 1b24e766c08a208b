"""The IdP's Prometheus metrics (the lab metric contract, README "The lab") and the ASGI middleware
that records them.

The middleware sits OUTSIDE the fault middleware, so a faulted response is counted with
the status the client actually got. It buffers the (small, form-encoded) request body
first, which lets it label a /token request by grant_type even when a fault answers
before the endpoint reads the body.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Histogram

from tokenslo.lab.asgi import ASGIApp, Message, Scope
from tokenslo.lab.faults import call_observed

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0)
SIZE_BUCKETS = (128, 256, 512, 768, 1024, 1536, 2048, 4096, 8192)
TTL_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 86400)
GRANT_TYPES = ("client_credentials", "refresh_token")
OTHER_GRANT = "other"  # unknown/missing grant_type: bounded label cardinality
COMMON_CODES = ("200", "400", "401", "500", "503")
MAX_BODY = 64 * 1024
STATE_KEY = "tokenslo.idp"  # scope key the endpoints use to hand facts to the middleware


class IdPMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.token_requests = Counter(
            "idp_token_requests_total",
            "Token endpoint requests by grant type and HTTP status.",
            ["grant_type", "code"],
            registry=registry,
        )
        self.token_duration = Histogram(
            "idp_token_request_duration_seconds",
            "Token endpoint latency.",
            ["grant_type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.introspection_requests = Counter(
            "idp_introspection_requests_total",
            "Introspection requests by HTTP status and whether the token was active.",
            ["code", "active"],
            registry=registry,
        )
        self.introspection_duration = Histogram(
            "idp_introspection_request_duration_seconds",
            "Introspection endpoint latency.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.revocation_requests = Counter(
            "idp_revocation_requests_total",
            "Revocation requests by HTTP status.",
            ["code"],
            registry=registry,
        )
        self.jwks_requests = Counter(
            "idp_jwks_requests_total", "JWKS requests by HTTP status.", ["code"], registry=registry
        )
        self.token_size = Histogram(
            "idp_token_size_bytes",
            "Size of issued access tokens.",
            ["grant_type"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.token_ttl = Histogram(
            "idp_token_ttl_seconds",
            "Lifetime of issued access tokens.",
            ["grant_type"],
            buckets=TTL_BUCKETS,
            registry=registry,
        )
        self.key_rotations = Counter(
            "idp_signing_key_rotations_total", "Signing key rotations.", registry=registry
        )
        self._preinitialise()

    def _preinitialise(self) -> None:
        """Create the common series at 0 so error ratios exist before the first error."""
        for grant in GRANT_TYPES:
            self.token_duration.labels(grant_type=grant)
            self.token_size.labels(grant_type=grant)
            self.token_ttl.labels(grant_type=grant)
            for code in COMMON_CODES:
                self.token_requests.labels(grant_type=grant, code=code)
        for code in COMMON_CODES:
            self.revocation_requests.labels(code=code)
            self.jwks_requests.labels(code=code)
            self.introspection_requests.labels(code=code, active="false")
        self.introspection_requests.labels(code="200", active="true")

    def record(self, path: str, grant_type: str, code: str, active: bool, seconds: float) -> None:
        if path == "/token":
            self.token_requests.labels(grant_type=grant_type, code=code).inc()
            self.token_duration.labels(grant_type=grant_type).observe(seconds)
        elif path == "/introspect":
            flag = "true" if active and code == "200" else "false"
            self.introspection_requests.labels(code=code, active=flag).inc()
            self.introspection_duration.observe(seconds)
        elif path == "/revoke":
            self.revocation_requests.labels(code=code).inc()
        elif path == "/jwks":
            self.jwks_requests.labels(code=code).inc()

    def issued(self, grant_type: str, token: str, ttl: int) -> None:
        self.token_size.labels(grant_type=grant_type).observe(len(token.encode("ascii")))
        self.token_ttl.labels(grant_type=grant_type).observe(ttl)


MEASURED = frozenset({"/token", "/introspect", "/revoke", "/jwks"})


class MetricsMiddleware:
    """Pure ASGI: count and time the contract endpoints with the status the client got.

    No response at all means the client went away first (a hang fault) → code 499;
    a ``drop`` fault (``scope["state"]["tokenslo_fault"] == "drop"``) sent nothing, so
    nothing is counted. Bodies over ``MAX_BODY`` get 413 without reaching the app.
    """

    def __init__(self, app: ASGIApp, metrics: IdPMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] not in MEASURED:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        facts: dict[str, Any] = {}
        scope[STATE_KEY] = facts
        grant = OTHER_GRANT
        if scope["path"] == "/token":
            body, receive = await _buffer_body(receive)
            if body is None:
                await _too_large(send)
                self.metrics.record(scope["path"], grant, "413", False, 0.0)
                return
            grant = _grant_type(body)

        def record(code: str) -> None:
            self.metrics.record(
                scope["path"], grant, code, bool(facts.get("active")), time.perf_counter() - start
            )

        await call_observed(self.app, scope, receive, send, record)


async def _too_large(send) -> None:
    body = b'{"error":"invalid_request","error_description":"request body too large"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _buffer_body(receive) -> tuple[bytes | None, Callable[[], Awaitable[Message]]]:
    """Read the request body and return a ``receive`` that replays it (None: too large)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), _constant(message)  # disconnected before the body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _constant(message: Message) -> Callable[[], Awaitable[Message]]:
    async def receive() -> Message:
        return message

    return receive


def _grant_type(body: bytes) -> str:
    try:
        values = parse_qs(body.decode("ascii"), max_num_fields=50).get("grant_type", [])
    except (UnicodeDecodeError, ValueError):
        return OTHER_GRANT
    return values[0] if len(values) == 1 and values[0] in GRANT_TYPES else OTHER_GRANT
