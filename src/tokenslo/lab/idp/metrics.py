"""The IdP's Prometheus metrics (the lab metric contract, README "The lab") and the ASGI middleware
that records them.

The middleware sits OUTSIDE the fault middleware, so a faulted response is counted with
the status the client actually got. It buffers the (small, form-encoded) request body
first, which lets it label a /token request by grant_type even when a fault answers
before the endpoint reads the body.

Labels from what callers send are bounded: the token error breakdown
(``idp_token_errors_total``) takes its ``error`` from a fixed list and its ``grant_type``
like the request counter; the ``client_id`` of the /token counters and of the escalation
counter is a registered client that authenticated, else ``unknown`` (``client_label``),
so no caller can add series: a request naming a client it cannot authenticate as counts
as ``unknown``, never as that client.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry, Counter, Histogram

from tokenslo.lab.asgi import ASGIApp, Message, Scope
from tokenslo.lab.exposition import client_label, client_values, zeroed_grid
from tokenslo.lab.faults import call_observed
from tokenslo.lab.idp.tokens import ESCALATION_KINDS

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0)
SIZE_BUCKETS = (128, 256, 512, 768, 1024, 1536, 2048, 4096, 8192)
TTL_BUCKETS = (60, 300, 600, 900, 1800, 3600, 7200, 86400)
GRANT_TYPES = ("client_credentials", "refresh_token")
OTHER_GRANT = "other"  # unknown/missing grant_type: bounded label cardinality
COMMON_CODES = ("200", "400", "401", "500", "503")
MAX_BODY = 64 * 1024
STATE_KEY = "tokenslo.idp"  # scope key the endpoints use to hand facts to the middleware
ERROR_FACT = "error"  # the facts key under which /token hands over its OAuth error code
CLIENT_FACT = "client_id"  # ... and the id of the client that authenticated
# The token endpoint's error codes: RFC 6749 §5.2, plus RFC 8707's invalid_target (the
# IdP's refusal of an audience) and the two §4.1.2.1 codes for a failing server.
OAUTH_ERRORS = (
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "server_error",
    "temporarily_unavailable",
)


def token_error_label(code: str, reported: str | None) -> str | None:
    """The ``error`` label of one /token answer with HTTP status ``code``, or None when
    there is no error to count.

    ``reported`` is the code the IdP wrote into the body; a code outside ``OAUTH_ERRORS``
    would be the IdP's own bug, so it counts as ``server_error``. Without one, the app
    did not answer: a 5xx (an injected status fault, or a crash Starlette turned into a
    500) counts as what RFC 6749 calls that condition, 503 ``temporarily_unavailable``
    and any other ``server_error``; an injected 4xx, a hang (499) or a success is no
    OAuth error of the IdP's and is seen only in ``idp_token_requests_total{code}``.
    """
    if reported is not None:
        return reported if reported in OAUTH_ERRORS else "server_error"
    if code == "503":
        return "temporarily_unavailable"
    return "server_error" if code.startswith("5") else None


class IdPMetrics:
    """The IdP's metrics; ``client_ids`` are the registered clients (``client_label``)."""

    def __init__(self, registry: CollectorRegistry, client_ids: Iterable[str] = ()):
        self.client_ids = frozenset(client_ids)
        self.clients = client_values(self.client_ids)
        self.token_requests = Counter(
            "idp_token_requests_total",
            "Token endpoint requests by grant type, HTTP status and authenticated client.",
            ["grant_type", "code", "client_id"],
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
        self.token_errors = zeroed_grid(
            "idp_token_errors",
            "Token endpoint errors by grant type, OAuth error code and authenticated client.",
            {
                "grant_type": (*GRANT_TYPES, OTHER_GRANT),
                "error": OAUTH_ERRORS,
                "client_id": self.clients,
            },
            registry,
        )
        self.escalations = zeroed_grid(
            "idp_privilege_escalation_attempts",
            "Token requests refused for asking more scope than the client may get.",
            {"client_id": self.clients, "kind": ESCALATION_KINDS},
            registry,
        )
        self._preinitialise()

    def _preinitialise(self) -> None:
        """Create the common series at 0 so error ratios exist before the first error."""
        for grant in GRANT_TYPES:
            self.token_duration.labels(grant_type=grant)
            self.token_size.labels(grant_type=grant)
            self.token_ttl.labels(grant_type=grant)
            for code in COMMON_CODES:
                for client in self.clients:
                    self.token_requests.labels(grant_type=grant, code=code, client_id=client)
        for code in COMMON_CODES:
            self.revocation_requests.labels(code=code)
            self.jwks_requests.labels(code=code)
            self.introspection_requests.labels(code=code, active="false")
        self.introspection_requests.labels(code="200", active="true")

    def record(
        self,
        path: str,
        grant_type: str,
        code: str,
        active: bool,
        seconds: float,
        error: str | None = None,
        client_id: object = None,
    ) -> None:
        """One answered request; ``error`` is the OAuth error code /token answered with,
        ``client_id`` the client that authenticated (None: none did)."""
        if path == "/token":
            client = client_label(client_id, self.client_ids)
            self.token_requests.labels(grant_type=grant_type, code=code, client_id=client).inc()
            self.token_duration.labels(grant_type=grant_type).observe(seconds)
            self.token_error(grant_type, token_error_label(code, error), client_id)
        elif path == "/introspect":
            flag = "true" if active and code == "200" else "false"
            self.introspection_requests.labels(code=code, active=flag).inc()
            self.introspection_duration.observe(seconds)
        elif path == "/revoke":
            self.revocation_requests.labels(code=code).inc()
        elif path == "/jwks":
            self.jwks_requests.labels(code=code).inc()

    def token_error(self, grant_type: str, error: str | None, client_id: object = None) -> None:
        if error is not None:
            client = client_label(client_id, self.client_ids)
            self.token_errors.labels(grant_type=grant_type, error=error, client_id=client).inc()

    def escalation(self, client_id: str, kind: str) -> None:
        """A refused privilege-escalation attempt (a kind of ``ESCALATION_KINDS``)."""
        label = client_label(client_id, self.client_ids)
        self.escalations.labels(client_id=label, kind=kind).inc()

    def issued(self, grant_type: str, token: str, ttl: int) -> None:
        self.token_size.labels(grant_type=grant_type).observe(len(token.encode("ascii")))
        self.token_ttl.labels(grant_type=grant_type).observe(ttl)


MEASURED = frozenset({"/token", "/introspect", "/revoke", "/jwks"})


class MetricsMiddleware:
    """Pure ASGI: count and time the contract endpoints with the status the client got.

    No response at all means the client went away first (a hang fault) → code 499;
    a ``drop`` fault (``scope["state"]["tokenslo_fault"] == "drop"``) sent nothing, so
    nothing is counted. Bodies over ``MAX_BODY`` get 413 without reaching the app. An
    exception from the app is a /token ``server_error`` (Starlette answers it with 500
    outside this middleware, which itself saw no response: 499).
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
                self.metrics.record(scope["path"], grant, "413", False, 0.0, "invalid_request")
                return
            grant = _grant_type(body)

        def record(code: str) -> None:
            seconds = time.perf_counter() - start
            active, error = bool(facts.get("active")), facts.get(ERROR_FACT)
            client = facts.get(CLIENT_FACT)
            self.metrics.record(scope["path"], grant, code, active, seconds, error, client)

        try:
            await call_observed(self.app, scope, receive, send, record)
        except Exception:
            if scope["path"] == "/token":
                self.metrics.token_error(grant, "server_error", facts.get(CLIENT_FACT))
            raise


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
