"""Gateway metrics (names and labels fixed by the lab metric contract, README "The lab").

Each app gets its own ``CollectorRegistry`` and its counters' series exist at 0 from the
start (``tokenslo.lab.exposition`` says why).

``gateway_token_validations_total`` carries the ``client_id`` of a token the issuer
vouched for (``Outcome.client_id``) when that client is in the config's ``clients``; any
other token, forged or unsigned, counts as ``unknown``: results x (clients + 1) series.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tokenslo.lab.asgi import ASGIApp, Message, Scope
from tokenslo.lab.exposition import (
    client_label,
    client_values,
    zeroed_counter,
    zeroed_counter_of_pairs,
    zeroed_grid,
)
from tokenslo.lab.gateway.replay import BUCKETS
from tokenslo.lab.gateway.scopes import DECISIONS, Decision
from tokenslo.lab.gateway.validator import RESULTS

# Every latency threshold an SLO uses (0.05, 0.1, 0.3) is a bucket boundary.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0)
COMMON_CODES = ("200", "400", "401", "403", "404", "431", "499", "500", "502", "503", "504")
UNCOUNTED_PREFIXES = ("/metrics", "/healthz", "/admin")


@dataclass
class GatewayMetrics:
    registry: CollectorRegistry
    validations: Counter
    validation_duration: Histogram
    jwks_refreshes: Counter
    jwks_cache_age: Gauge
    revocation_list_age: Gauge
    requests: Counter
    request_duration: Histogram
    authorization_decisions: Counter
    replay_suspected: Counter
    scope_beyond_registration: Counter
    client_ids: frozenset[str] = frozenset()

    def validation(self, result: str, client_id: object = None) -> None:
        """One verdict; ``client_id`` only from a token the issuer vouched for."""
        client = client_label(client_id, self.client_ids)
        self.validations.labels(result=result, client_id=client).inc()

    def authorization(self, decision: Decision) -> None:
        self.authorization_decisions.labels(outcome=decision.outcome, reason=decision.reason).inc()

    def beyond_registration(self, client_id: str) -> None:
        """A verified token of ``client_id`` (a client with known scopes) was wider than them."""
        self.scope_beyond_registration.labels(client_id=client_id).inc()

    def replay(self, bucket: str) -> None:
        self.replay_suspected.labels(token_bucket=bucket).inc()

    def jwks_refresh(self, outcome: str) -> None:
        self.jwks_refreshes.labels(outcome=outcome).inc()


def create_metrics(
    registry: CollectorRegistry,
    jwks_age: Callable[[], float],
    revocation_age: Callable[[], float],
    client_ids: Iterable[str] = (),
    judged_clients: Iterable[str] = (),
) -> GatewayMetrics:
    """``judged_clients``: the clients with known registered scopes (``client_scopes``)."""
    registered = frozenset(client_ids)
    validations = zeroed_grid(
        "gateway_token_validations",
        "Access-token validations by result and the (verified, registered) client.",
        {"result": RESULTS, "client_id": client_values(registered)},
        registry,
    )
    jwks_refreshes = zeroed_counter(
        "gateway_jwks_refreshes_total",
        "JWKS fetches from the IdP by outcome.",
        "outcome",
        ("success", "error"),
        registry,
    )
    jwks_cache_age = Gauge(
        "gateway_jwks_cache_age_seconds",
        "Seconds since the JWKS was last fetched successfully (+Inf before the first).",
        registry=registry,
    )
    jwks_cache_age.set_function(jwks_age)
    revocation_list_age = Gauge(
        "gateway_revocation_list_age_seconds",
        "Seconds since the revocation list was last polled successfully (+Inf before).",
        registry=registry,
    )
    revocation_list_age.set_function(revocation_age)
    requests = zeroed_counter(
        "gateway_requests_total",
        "HTTP requests to the gateway's API by status code the client got.",
        "code",
        COMMON_CODES,
        registry,
    )
    return GatewayMetrics(
        registry=registry,
        validations=validations,
        validation_duration=Histogram(
            "gateway_token_validation_duration_seconds",
            "Time to validate one access token (including any JWKS refresh/introspection).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        jwks_refreshes=jwks_refreshes,
        jwks_cache_age=jwks_cache_age,
        revocation_list_age=revocation_list_age,
        requests=requests,
        request_duration=Histogram(
            "gateway_request_duration_seconds",
            "Gateway API request latency (what the client saw, faults included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        authorization_decisions=zeroed_counter_of_pairs(
            "gateway_authorization_decisions_total",
            "Scope checks of validated tokens by outcome (allow, deny) and reason.",
            ("outcome", "reason"),
            DECISIONS,
            registry,
        ),
        replay_suspected=zeroed_counter(
            "gateway_token_replay_suspected_total",
            "Verified tokens seen from one more distinct source than allowed, by token_bucket"
            " (first hex digit of sha256(jti)).",
            "token_bucket",
            BUCKETS,
            registry,
        ),
        scope_beyond_registration=zeroed_counter(
            "gateway_scope_beyond_registration_total",
            "Verified tokens carrying a scope outside their client's registration, by client.",
            "client_id",
            sorted(set(judged_clients)),
            registry,
        ),
        client_ids=registered,
    )


class RequestMetricsMiddleware:
    """Counts API requests by the status the client got; must wrap the fault middleware.

    A ``hang`` fault ends with a 499 start message (counted as "499"); a ``drop``
    sends nothing and is therefore not counted — the server answered nothing.
    Health, metrics and admin paths are not API traffic and are not counted.
    """

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(UNCOUNTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        status: int | None = None
        start = time.perf_counter()

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if status is None:
                status = 500
            raise
        finally:
            if status is not None:
                self.metrics.requests.labels(code=str(status)).inc()
                self.metrics.request_duration.observe(time.perf_counter() - start)
