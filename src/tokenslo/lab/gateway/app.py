"""The lab gateway: a resource server that validates access tokens (RFC 6750/8725/9068).

``GET /api/resource`` and ``POST /api/resource`` need a Bearer token carrying the
scopes the config requires of each route (``route_scopes``; ``api.read`` and
``api.write`` by default): a valid token without them is answered 403
``insufficient_scope``. ``GET /public/resource`` does the same work without a
token (the latency baseline). Requests pass, outermost first,
through the request-metrics middleware and the fault middleware, so injected
faults are counted with the status the client got.

Logs name a token only by ``sha256(token)[:12]`` of its canonical form, so both ECDSA
twins of a token get one name (``tokenslo.jws``; a suspected replay: by
``sha256(jti)[:12]``, ``replay.py``); the uvicorn access log must stay off
(``__main__`` does that) because it would print query strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeGuard

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.jws import token_fingerprint
from tokenslo.lab.exposition import metrics_response
from tokenslo.lab.faults import FaultEngine, FaultMiddleware, admin_routes, check_admin
from tokenslo.lab.gateway.config import ClientCredentials, GatewayConfig
from tokenslo.lab.gateway.idp_client import CachedIntrospector, IdPClient, IdPUnavailable
from tokenslo.lab.gateway.jwks_cache import JWKSCache
from tokenslo.lab.gateway.metrics import GatewayMetrics, RequestMetricsMiddleware, create_metrics
from tokenslo.lab.gateway.replay import ReplayDetector, source_fingerprint
from tokenslo.lab.gateway.revocation import IntrospectionCache, RevocationList
from tokenslo.lab.gateway.scopes import (
    INSUFFICIENT_SCOPE,
    decide,
    route_key,
    scopes_beyond_registration,
)
from tokenslo.lab.gateway.validator import (
    INTERNAL_ERROR,
    MALFORMED,
    TOO_LARGE,
    Outcome,
    TokenBucket,
    TokenValidator,
    is_b64token,
)
from tokenslo.lab.logsafe import clean

log = logging.getLogger("tokenslo.lab.gateway")

REALM = "tokenslo"
BEARER_PREFIX = "Bearer "


@dataclass
class Gateway:
    """Everything one gateway app holds; ``create_app`` exposes it as ``app.state.gateway``."""

    config: GatewayConfig
    engine: FaultEngine
    metrics: GatewayMetrics
    idp: IdPClient
    jwks: JWKSCache
    revocations: RevocationList
    introspection_cache: IntrospectionCache
    validator: TokenValidator
    replay: ReplayDetector
    background: asyncio.Task | None = field(default=None, repr=False)

    async def poll_revocations(self) -> None:
        try:
            count = self.revocations.replace(await self.idp.fetch_revocations())
        except (IdPUnavailable, ValueError) as exc:
            log.warning(
                "revocation poll failed (%s); keeping %d entries", exc, len(self.revocations)
            )
            return
        log.debug("revocation list: %d entries", count)

    async def tick(self) -> None:
        """One round of background work: revocation list, then JWKS if its TTL ran out."""
        await self.poll_revocations()
        if self.jwks.stale() and self.jwks.may_refresh():
            await self.jwks.refresh()

    async def run_background(self) -> None:
        """Poll until cancelled at shutdown; each round is bounded by the HTTP timeout."""
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the poller must survive any single failure
                log.exception("gateway background poll failed")
            await asyncio.sleep(self.config.revocation_poll_interval)


def create_app(
    config: GatewayConfig,
    *,
    admin_secret: str,
    credentials: ClientCredentials | None = None,
    engine: FaultEngine | None = None,
    registry: CollectorRegistry | None = None,
) -> Starlette:
    """The gateway Starlette app; start it with uvicorn (one worker, loopback)."""
    if not admin_secret:
        raise ValueError("an admin secret is required")
    registry = registry if registry is not None else CollectorRegistry()
    engine = engine or FaultEngine(service="gateway", registry=registry)
    gateway = _build_gateway(config, engine, registry, credentials)
    routes = [
        Route("/api/resource", _api_resource, methods=["GET", "POST"]),
        Route("/public/resource", _public_resource, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/admin/status", _admin_status(admin_secret), methods=["GET"]),
        *admin_routes(engine, admin_secret),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetricsMiddleware, metrics=gateway.metrics),
            Middleware(FaultMiddleware, engine=engine),
        ],
        lifespan=_lifespan,
    )
    app.state.gateway = gateway
    return app


def _build_gateway(
    config: GatewayConfig,
    engine: FaultEngine,
    registry: CollectorRegistry,
    credentials: ClientCredentials | None,
) -> Gateway:
    idp = IdPClient(config, http=None, credentials=credentials)  # type: ignore[arg-type]
    revocations = RevocationList()
    holder: dict[str, GatewayMetrics] = {}
    jwks = JWKSCache(
        idp.fetch_jwks,
        ttl=config.jwks_ttl,
        cooldown=config.jwks_refresh_cooldown,
        on_refresh=lambda outcome: holder["metrics"].jwks_refresh(outcome),
    )
    metrics = create_metrics(
        registry, jwks.age, revocations.age, config.clients, config.client_scopes
    )
    holder["metrics"] = metrics
    cache = IntrospectionCache(config.introspection_cache_ttl)
    validator = TokenValidator(
        issuer=config.issuer,
        audience=config.audience,
        allowed_algs=config.allowed_algs,
        leeway=config.leeway,
        max_token_bytes=config.max_token_bytes,
        keys=jwks,
        is_revoked=revocations.is_revoked,
        now=engine.now,
        introspector=_introspector(config, idp, cache) if credentials else None,
        max_token_lifetime=config.max_token_lifetime or None,
    )
    replay = ReplayDetector(config.replay_max_sources, config.replay_max_tracked_tokens)
    return Gateway(config, engine, metrics, idp, jwks, revocations, cache, validator, replay)


def _introspector(
    config: GatewayConfig, idp: IdPClient, cache: IntrospectionCache
) -> CachedIntrospector:
    rate = config.introspection_rate_limit
    return CachedIntrospector(idp, cache, TokenBucket(rate, burst=max(1.0, 2 * rate)))


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    gateway: Gateway = app.state.gateway
    timeout = httpx.Timeout(gateway.config.http_timeout)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as http:
        gateway.idp.http = http
        gateway.background = asyncio.create_task(gateway.run_background())
        log.info(
            "gateway ready issuer=%s audience=%s algs=%s",
            gateway.config.issuer,
            gateway.config.audience,
            ",".join(gateway.config.allowed_algs),
        )
        try:
            yield
        finally:
            gateway.background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gateway.background
            gateway.engine.stop_sweeper()
            log.info("gateway stopped")


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class BearerProblem:
    """Why a request carries no usable Bearer token (RFC 6750 §3.1)."""

    status: int
    error: str | None
    description: str
    counted: bool  # counted as a ``malformed`` validation (a credential was attempted)


def extract_bearer(request: Request) -> tuple[str | None, BearerProblem | None]:
    """The token from the one ``Authorization: Bearer`` header, or why there is none.

    Tokens in the query string are refused (RFC 6750 §2.3 "SHOULD NOT"; they
    leak into logs and referrers). The scheme is case-insensitive (RFC 7235 §2.1).
    """
    if "access_token" in request.query_params:
        return None, BearerProblem(
            400, "invalid_request", "access tokens in the URI are not accepted", True
        )
    values = request.headers.getlist("authorization")
    if not values:
        return None, BearerProblem(401, None, "", False)
    if len(values) > 1:
        return None, BearerProblem(400, "invalid_request", "multiple Authorization headers", True)
    scheme, _, credentials = values[0].partition(" ")
    if scheme.lower() != "bearer":
        if values[0][:6].lower() == "bearer":
            return None, BearerProblem(400, "invalid_request", "malformed Bearer credentials", True)
        return None, BearerProblem(401, None, "", False)
    if not is_b64token(credentials):
        return None, BearerProblem(400, "invalid_request", "malformed Bearer credentials", True)
    return credentials, None


def _challenge(
    status: int, error: str | None, description: str, scopes: tuple[str, ...] = ()
) -> Response:
    """An RFC 6750 §3 challenge; ``scopes`` (for ``insufficient_scope``) are the ones the
    route requires, which the client needs to ask the IdP for."""
    parts = [f'realm="{REALM}"']
    body: dict[str, str] = {}
    if error:
        parts.append(f'error="{error}"')
        body["error"] = error
        if description:
            parts.append(f'error_description="{description}"')
            body["error_description"] = description
    if scopes:
        parts.append(f'scope="{" ".join(scopes)}"')
    return JSONResponse(
        body or {"error": "unauthorized"},
        status_code=status,
        headers={"WWW-Authenticate": "Bearer " + ", ".join(parts)},
    )


def authorization_bytes(request: Request) -> int:
    """Bytes of every ``Authorization`` header value (headers are latin-1: one per char)."""
    return sum(len(value) for value in request.headers.getlist("authorization"))


def _too_large(gateway: Gateway, size: int) -> Response:
    """RFC 6585 §5 431: the credential is over ``max_token_bytes``; counted ``too_large``.

    Anyone can send a huge header, so ``too_large`` stays out of every SLO; a token the
    IdP bloated shows on the IdP's token-size SLO instead.
    """
    limit = gateway.config.max_token_bytes
    gateway.metrics.validation(TOO_LARGE)
    log.info("request rejected result=too_large bytes=%d limit=%d", size, limit)
    return _challenge(431, "invalid_request", f"Authorization header larger than {limit} bytes")


async def _api_resource(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    size = authorization_bytes(request)
    if size > gateway.config.max_token_bytes + len(BEARER_PREFIX):
        return _too_large(gateway, size)
    token, problem = extract_bearer(request)
    if problem is not None:
        if problem.counted:
            gateway.metrics.validation(MALFORMED)
            log.info("request rejected result=malformed reason=%s", clean(problem.description))
        return _challenge(problem.status, problem.error, problem.description)
    assert token is not None
    started = time.perf_counter()
    try:
        outcome = await gateway.validator.validate(token)
    except IdPUnavailable as exc:
        log.warning("token %s: introspection unavailable (%s)", token_fingerprint(token), exc)
        return JSONResponse(
            {"error": "temporarily_unavailable", "error_description": "token service unavailable"},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    except Exception as exc:  # noqa: BLE001 - no token may turn into a 500 and a traceback
        outcome = Outcome(INTERNAL_ERROR, f"token could not be validated ({type(exc).__name__})")
    finally:
        gateway.metrics.validation_duration.observe(time.perf_counter() - started)
    if outcome.result == TOO_LARGE:
        return _too_large(gateway, size)
    gateway.metrics.validation(outcome.result, outcome.client_id)
    if not outcome.valid:
        log.log(
            logging.ERROR if outcome.result == INTERNAL_ERROR else logging.INFO,
            "token %s rejected result=%s reason=%s",
            token_fingerprint(token),
            outcome.result,
            clean(outcome.description),
        )
        public = outcome.description if outcome.result != INTERNAL_ERROR else "token not accepted"
        return _challenge(401, "invalid_token", public)
    _watch_replay(gateway, request, outcome)
    _watch_registration(gateway, token, outcome)
    return await _authorize(gateway, request, token, outcome)


def _watch_replay(gateway: Gateway, request: Request, outcome: Outcome) -> None:
    """Count a verified token presented from one more source than its owner plausibly has.

    Called only for tokens that passed validation, so a forged ``jti`` raises nothing;
    a token without ``jti`` or ``exp`` (possible for opaque tokens) is not tracked.
    """
    jti, exp = outcome.claims.get("jti"), outcome.claims.get("exp")
    if not isinstance(jti, str) or not jti or not _is_timestamp(exp):
        return
    config = gateway.config
    device = (
        request.headers.get(config.replay_source_header, "") if config.replay_source_header else ""
    )
    source = source_fingerprint(
        request.client.host if request.client else "", request.headers.get("user-agent", ""), device
    )
    suspicion = gateway.replay.observe(jti, exp + config.leeway, source, gateway.engine.now())
    if suspicion is None:
        return
    gateway.metrics.replay(suspicion.bucket)
    log.warning(
        "token replay suspected jti_sha256=%s token_bucket=%s sources=%d max_sources=%d",
        suspicion.jti_sha256_12,
        suspicion.bucket,
        suspicion.sources,
        config.replay_max_sources,
    )


# Extra scope names one log line lists at most (the IdP signed them, but a broken IdP
# may sign anything).
MAX_LOGGED_SCOPES = 10


def _watch_registration(gateway: Gateway, token: str, outcome: Outcome) -> None:
    """Count a verified token wider than its client's registration: the IdP issued
    what it should have refused (misconfigured or compromised). Only a client the
    issuer vouched for is judged, so a forged token moves nothing; the request then
    gets the route's scope check as any other."""
    extra = scopes_beyond_registration(
        outcome.client_id, outcome.claims, gateway.config.client_scopes
    )
    if not extra:
        return
    client = str(outcome.client_id)
    gateway.metrics.beyond_registration(client)
    log.warning(
        "token %s scope beyond registration client_id=%s extra_scopes=%s",
        token_fingerprint(token),
        client,
        clean(" ".join(extra[:MAX_LOGGED_SCOPES])),
    )


def _is_timestamp(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


async def _authorize(gateway: Gateway, request: Request, token: str, outcome: Outcome) -> Response:
    """The scope check of a validated token, counted apart from its (successful) validation."""
    required = gateway.config.required_scopes(route_key(request.method, request.url.path))
    decision = decide(required, outcome.claims)
    gateway.metrics.authorization(decision)
    if not decision.allowed:
        log.info(
            "token %s denied reason=%s missing=%s",
            token_fingerprint(token),
            decision.reason,
            " ".join(decision.missing),
        )
        return _challenge(403, INSUFFICIENT_SCOPE, "token lacks a required scope", required)
    return await _respond(gateway, request, _resource_body("protected", outcome))


async def _public_resource(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return await _respond(gateway, request, _resource_body("public", None))


def _resource_body(kind: str, outcome: Outcome | None) -> dict[str, object]:
    claims = outcome.claims if outcome is not None else {}
    return {
        "resource": kind,
        "sub": claims.get("sub"),
        "client_id": claims.get("client_id"),
        "scope": claims.get("scope"),
        "items": [{"id": i, "name": f"item-{i}"} for i in range(5)],
    }


async def _respond(gateway: Gateway, request: Request, body: dict[str, object]) -> Response:
    """The resource itself, or the upstream's answer when an upstream is configured.

    The upstream is asked with the client's method; a request body is not read or
    forwarded (the lab's resource takes none, and an unread body costs no memory).
    """
    upstream = gateway.config.upstream
    if not upstream:
        return JSONResponse(body)
    url = upstream.rstrip("/") + request.url.path
    headers = {}
    if body.get("sub"):
        headers["X-Tokenslo-Subject"] = str(body["sub"])
    try:
        method = "GET" if request.method == "HEAD" else request.method
        answer = await gateway.idp.http.request(method, url, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("upstream unavailable (%s)", type(exc).__name__)
        return JSONResponse({"error": "bad_gateway"}, status_code=502)
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type"),
    )


async def _healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _metrics(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    return metrics_response(gateway.metrics.registry)


def _admin_status(admin_secret: str):
    async def status(request: Request) -> Response:
        if (denied := check_admin(request, admin_secret)) is not None:
            return denied
        gateway: Gateway = request.app.state.gateway
        return JSONResponse(
            {
                "issuer": gateway.config.issuer,
                "audience": gateway.config.audience,
                "jwks_kids": gateway.jwks.kids,
                "jwks_cache_age_seconds": _finite(gateway.jwks.age()),
                "revoked_jtis": len(gateway.revocations),
                "revocation_list_age_seconds": _finite(gateway.revocations.age()),
                "introspection_cache_entries": len(gateway.introspection_cache),
            }
        )

    return status


def _finite(value: float) -> float | None:
    return value if value != float("inf") else None
