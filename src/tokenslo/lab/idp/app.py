"""The IdP's HTTP surface: a Starlette app over ``KeyStore``, ``TokenService`` and the
client registry, wrapped (outside in) by the metrics middleware and the fault middleware.

Endpoints are async and do their (short, CPU-bound) signing inline: with one uvicorn
worker a thread-pool hop per request would cost more than the ES256 signature itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, unquote

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.jws import token_fingerprint
from tokenslo.lab.exposition import metrics_response
from tokenslo.lab.faults import FaultEngine, FaultMiddleware, admin_routes, check_admin, read_json
from tokenslo.lab.faults.engine import number_field
from tokenslo.lab.idp.clients import Client, ClientRegistry, load_clients
from tokenslo.lab.idp.config import IdPConfig
from tokenslo.lab.idp.keys import KeyStore, SigningKey
from tokenslo.lab.idp.metrics import (
    CLIENT_FACT,
    ERROR_FACT,
    STATE_KEY,
    IdPMetrics,
    MetricsMiddleware,
)
from tokenslo.lab.idp.profiles import ProfileStore, TokenProfile, parse_profile
from tokenslo.lab.idp.tokens import SWEEP_INTERVAL, OAuthError, TokenService
from tokenslo.lab.logsafe import clean
from tokenslo.lab.serving import BodyTooLarge, read_limited

log = logging.getLogger("tokenslo.lab.idp")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
FAULT_MAX_EXPIRY = 3600.0
HOUSEKEEPING_INTERVAL = 1.0  # seconds: how late a pending key may publish itself at most
ROTATE_FIELDS = ("publish", "expires_in")
MAX_FORM_BYTES = 64 * 1024  # OAuth forms are a few hundred bytes; anyone can send more


class IdP:
    """Everything one IdP instance holds; endpoints are its methods."""

    def __init__(
        self,
        config: IdPConfig,
        clients: ClientRegistry,
        admin_secret: str,
        engine: FaultEngine,
        registry: CollectorRegistry,
    ):
        self.config = config
        self.issuer = config.effective_issuer
        self.clients = clients
        self.admin_secret = admin_secret
        self.engine = engine
        self.registry = registry
        self.metrics = IdPMetrics(registry, (c.client_id for c in clients))
        self.keys = KeyStore(
            config.signing_alg,
            config.keys_file,
            now=engine.now,
            real_now=engine.real_now,
            on_publish=self._key_published,
        )
        self.profiles = ProfileStore(engine.real_now, self._profile_ended)
        self.tokens = TokenService(
            self.issuer,
            self.keys,
            now=engine.now,
            revocations_file=config.revocations_file,
            profile=self.profiles.active,
        )
        # an unpublished key or a token profile is an injected fault: it shows in
        # tokenslo_faults_active and DELETE /admin/faults ends it
        engine.add_active_source(lambda: len(self.keys.pending()), self._publish_pending)
        engine.add_active_source(lambda: len(self.profiles), self.profiles.remove)
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None

    # -- OAuth endpoints -------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        client: Client | None = None
        try:
            form = await _form(request)
            client = self._authenticate(request, form)
            _hand_over(request, CLIENT_FACT, client.client_id)
            grant = form.get("grant_type")
            if not grant:
                raise OAuthError("invalid_request", "grant_type is required")
            if grant not in ("client_credentials", "refresh_token"):
                raise OAuthError(
                    "unsupported_grant_type", "supported: client_credentials, refresh_token"
                )
            if grant not in client.grant_types:
                raise OAuthError("unauthorized_client", f"client may not use {grant}")
            if grant == "client_credentials":
                issued = self.tokens.client_credentials(
                    client, form.get("scope"), form.get("audience") or form.get("resource")
                )
            else:
                refresh = form.get("refresh_token")
                if not refresh:
                    raise OAuthError("invalid_request", "refresh_token is required")
                issued = self.tokens.refresh(client, refresh, form.get("scope"))
        except OAuthError as exc:
            self._token_refused(request, client, exc)
            return _oauth_error(exc)
        self.metrics.issued(grant, issued.access_token, issued.expires_in)
        log.debug(
            "token issued client=%s grant=%s token=%s",
            clean(client.client_id),
            clean(grant),
            token_fingerprint(issued.access_token),
        )
        body = {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }
        if issued.refresh_token:
            body["refresh_token"] = issued.refresh_token
        return JSONResponse(body, headers=NO_STORE)

    def _token_refused(self, request: Request, client: Client | None, exc: OAuthError) -> None:
        """Hand the error code to the metrics middleware; count an escalation attempt."""
        _hand_over(request, ERROR_FACT, exc.error)
        if exc.escalation is not None and client is not None:
            self.metrics.escalation(client.client_id, exc.escalation)
            log.info(
                "privilege escalation refused client=%s kind=%s: %s",
                clean(client.client_id),
                exc.escalation,
                clean(exc.description),
            )

    async def introspect(self, request: Request) -> Response:
        try:
            form = await _form(request)
            self._authenticate(request, form, introspection=True)
            token = form.get("token")
            if not token:
                raise OAuthError("invalid_request", "token is required")
        except OAuthError as exc:
            return _oauth_error(exc)
        result = self.tokens.introspect(token)
        _hand_over(request, "active", result["active"])
        return JSONResponse(result, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        try:
            form = await _form(request)
            client = self._authenticate(request, form)
            token = form.get("token")
            if not token:
                raise OAuthError("invalid_request", "token is required")
            kind = self.tokens.revoke(client, token)
        except OAuthError as exc:
            return _oauth_error(exc)
        if kind != "unknown":
            log.info(
                "token revoked client=%s kind=%s token=%s",
                clean(client.client_id),
                kind,
                token_fingerprint(token),
            )
        return Response(status_code=200, headers=NO_STORE)

    async def revocations(self, request: Request) -> Response:
        try:
            self._authenticate(request, await _form(request, allow_get=True), introspection=True)
        except OAuthError as exc:
            return _oauth_error(exc)
        return JSONResponse(self.tokens.revocation_list(), headers=NO_STORE)

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.keys.jwks(), headers={"Cache-Control": "public, max-age=60"})

    async def discovery(self, request: Request) -> Response:
        base = self.issuer
        return JSONResponse(
            {
                "issuer": base,
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "introspection_endpoint": f"{base}/introspect",
                "revocation_endpoint": f"{base}/revoke",
                "tokenslo_revocation_list_endpoint": f"{base}/revocations",
                "grant_types_supported": ["client_credentials", "refresh_token"],
                "token_endpoint_auth_methods_supported": AUTH_METHODS,
                "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
                "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
                "response_types_supported": [],
                "scopes_supported": sorted({s for c in self.clients for s in c.scopes}),
            }
        )

    # -- admin, health, metrics ------------------------------------------------------------

    async def rotate_keys(self, request: Request) -> Response:
        """``{"publish": bool, "expires_in": s}``: an unpublished key is a fault, so it
        needs ``expires_in`` (capped like faults) and publishes itself then."""
        if (denied := check_admin(request, self.admin_secret)) is not None:
            return denied
        body, error = await read_json(request)
        if error is not None:
            return error
        try:
            publish, expires_in = parse_rotation(body, self.engine.max_expiry)
        except ValueError as exc:
            return JSONResponse(
                {"error": "invalid_request", "error_description": str(exc)}, status_code=400
            )
        key = self.keys.rotate(publish=publish, publish_in=expires_in)
        self.metrics.key_rotations.inc()
        log.info("signing key rotated kid=%s alg=%s published=%s", key.kid, key.alg, publish)
        if not publish:
            self.engine.record_change(
                "add", f"unpublished signing key kid={key.kid} expires_in={expires_in:g}s"
            )
        return self._key_state(key.kid)

    async def publish_key(self, request: Request) -> Response:
        if (denied := check_admin(request, self.admin_secret)) is not None:
            return denied
        key = self.keys.publish_current()
        log.info("signing key published kid=%s", key.kid)
        return self._key_state(key.kid)

    async def list_keys(self, request: Request) -> Response:
        """Every retained key (never key material): kid, alg, published, publish_at."""
        if (denied := check_admin(request, self.admin_secret)) is not None:
            return denied
        keys = self.keys.keys()
        current = keys[-1].kid
        return JSONResponse(
            {
                "current_kid": current,
                "keys": [
                    {
                        "kid": k.kid,
                        "alg": k.alg,
                        "created_at": k.created_at,
                        "published": k.published,
                        "publish_at": k.publish_at,
                        "current": k.kid == current,
                    }
                    for k in reversed(keys)
                ],
            }
        )

    async def token_profiles(self, request: Request) -> Response:
        """``POST``: issue bad tokens for a client until ``expires_in`` (a lab fault, see
        ``tokenslo.lab.idp.profiles``); ``GET``: the active ones; ``DELETE``: end them all."""
        if (denied := check_admin(request, self.admin_secret)) is not None:
            return denied
        if request.method == "GET":
            return JSONResponse({"profiles": [p.to_dict() for p in self.profiles.snapshot()]})
        if request.method == "DELETE":
            return JSONResponse({"cleared": self.profiles.remove()})
        body, error = await read_json(request)
        if error is not None:
            return error
        try:
            profile = parse_profile(
                body,
                now=self.engine.real_now(),
                max_expiry=self.engine.max_expiry,
                clients=[c.client_id for c in self.clients],
            )
        except ValueError as exc:
            return JSONResponse(
                {"error": "invalid_request", "error_description": str(exc)}, status_code=400
            )
        self.profiles.set(profile)
        expires_in = profile.expires_at - self.engine.real_now()
        self.engine.record_change(
            "add", f"token profile {profile.describe()} expires_in={expires_in:.0f}s"
        )
        return JSONResponse(profile.to_dict())

    async def token_profile(self, request: Request) -> Response:
        """``DELETE /admin/token-profiles/{client_id}``: end that client's profile."""
        if (denied := check_admin(request, self.admin_secret)) is not None:
            return denied
        return JSONResponse({"cleared": self.profiles.remove(request.path_params["client_id"])})

    def _publish_pending(self) -> int:
        """Publish the current key if it is waiting (the end of a rotation fault)."""
        pending = self.keys.pending()
        if pending:
            self.keys.publish_current()
        return len(pending)

    def _profile_ended(self, action: str, profile: TokenProfile) -> None:
        self.engine.record_change(action, f"token profile {profile.describe()} ended")

    def _key_published(self, key: SigningKey, reason: str) -> None:
        """A pending key ended: by its expiry (``expired``) or by ``/admin/keys/publish``."""
        action = "expire" if reason == "expired" else "remove"
        self.engine.record_change(action, f"unpublished signing key kid={key.kid} now published")

    def _key_state(self, kid: str) -> Response:
        current = self.keys.current
        published = [k["kid"] for k in self.keys.jwks()["keys"]]
        return JSONResponse(
            {
                "kid": kid,
                "current_kid": current.kid,
                "published": current.published,
                "publish_at": current.publish_at,
                "jwks_kids": published,
            }
        )

    # -- housekeeping: expiries and memory, also without traffic ---------------------------

    def start_housekeeping(self, interval: float = HOUSEKEEPING_INTERVAL) -> None:
        if self._housekeeper is not None and self._housekeeper.is_alive():
            return
        self._stop.clear()
        self._housekeeper = threading.Thread(
            target=self._housekeeping, args=(interval,), name="idp-housekeeping", daemon=True
        )
        self._housekeeper.start()

    def stop_housekeeping(self) -> None:
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join(timeout=5)
            self._housekeeper = None

    def _housekeeping(self, interval: float) -> None:
        sweeps_every = max(1, round(SWEEP_INTERVAL / interval))
        ticks = 0
        while not self._stop.wait(interval):
            ticks += 1
            try:
                self.keys.publish_due()
                self.profiles.expire_due()
                if ticks % sweeps_every == 0:
                    self.tokens.sweep()
            except Exception:  # noqa: BLE001 - keep the thread alive; the next tick retries
                log.exception("idp housekeeping failed")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics_endpoint(self, request: Request) -> Response:
        return metrics_response(self.registry)

    # -- client authentication -------------------------------------------------------------

    def _authenticate(
        self, request: Request, form: dict[str, str], introspection: bool = False
    ) -> Client:
        """RFC 6749 §2.3.1: exactly one of client_secret_basic or client_secret_post."""
        header = request.headers.get("authorization")
        in_body = "client_secret" in form
        if header and in_body:
            raise OAuthError("invalid_request", "use only one client authentication method")
        if header:
            client_id, secret = _basic_credentials(header)
        elif in_body:
            client_id, secret = form.get("client_id", ""), form["client_secret"]
        else:
            raise OAuthError("invalid_client", "client authentication required", 401)
        client = self.clients.authenticate(client_id, secret)
        if client is None:
            log.info(
                "client authentication failed client_id=%s path=%s",
                clean(client_id, 64),
                clean(request.url.path),
            )
            raise OAuthError("invalid_client", "client authentication failed", 401)
        if introspection and not client.introspect:
            raise OAuthError("unauthorized_client", "client may not introspect", 403)
        return client

    def routes(self) -> list[Route]:
        return [
            Route("/token", self.token, methods=["POST"]),
            Route("/introspect", self.introspect, methods=["POST"]),
            Route("/revoke", self.revoke, methods=["POST"]),
            Route("/revocations", self.revocations, methods=["GET", "POST"]),
            Route("/jwks", self.jwks, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", self.discovery, methods=["GET"]),
            Route("/.well-known/openid-configuration", self.discovery, methods=["GET"]),
            Route("/admin/keys/rotate", self.rotate_keys, methods=["POST"]),
            Route("/admin/keys/publish", self.publish_key, methods=["POST"]),
            Route("/admin/keys", self.list_keys, methods=["GET"]),
            Route("/admin/token-profiles", self.token_profiles, methods=["GET", "POST", "DELETE"]),
            Route("/admin/token-profiles/{client_id}", self.token_profile, methods=["DELETE"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics_endpoint, methods=["GET"]),
            *admin_routes(self.engine, self.admin_secret),
        ]


def create_app(
    config: IdPConfig,
    *,
    admin_secret: str,
    clients: ClientRegistry | None = None,
    engine: FaultEngine | None = None,
    registry: CollectorRegistry | None = None,
) -> Starlette:
    """Build the IdP app; ``app.state.idp`` is the ``IdP`` (keys, tokens, metrics) for tests.

    ``clients`` defaults to ``config.clients_file``; ``engine`` to a fresh ``FaultEngine``
    sharing ``registry`` (a new per-app registry by default).
    """
    if not admin_secret:
        raise ValueError("admin_secret is required")
    if clients is None:
        if config.clients_file is None:
            raise ValueError("config.clients_file or clients is required")
        clients = load_clients(config.clients_file)
    registry = registry if registry is not None else CollectorRegistry()
    engine = engine or FaultEngine(service="idp", registry=registry, max_expiry=FAULT_MAX_EXPIRY)
    idp = IdP(config, clients, admin_secret, engine, registry)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        idp.start_housekeeping()
        try:
            yield
        finally:
            idp.stop_housekeeping()
            engine.stop_sweeper()

    app = Starlette(
        routes=idp.routes(),
        middleware=[  # first = outermost: metrics see what the fault middleware sent
            Middleware(MetricsMiddleware, metrics=idp.metrics),
            Middleware(FaultMiddleware, engine=engine),
        ],
        lifespan=lifespan,
    )
    app.state.idp = idp
    return app


def parse_rotation(body: object, max_expiry: float) -> tuple[bool, float | None]:
    """A rotation request as ``(publish, expires_in)``; ValueError names the bad field."""
    if not isinstance(body, dict):
        raise ValueError("body: must be a JSON object")
    unknown = sorted(set(body) - set(ROTATE_FIELDS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (allowed: {', '.join(ROTATE_FIELDS)})")
    publish = body.get("publish", True)
    if not isinstance(publish, bool):
        raise ValueError("publish: must be true or false")
    if publish:
        if body.get("expires_in") is not None:
            raise ValueError("expires_in: only with publish false (a published key stays)")
        return True, None
    expires_in = number_field(body, "expires_in")  # huge or non-numbers: one bounded message
    if expires_in is None:
        raise ValueError(
            "expires_in: required with publish false (seconds until the key publishes itself)"
        )
    if not 0 < expires_in <= max_expiry:
        raise ValueError(
            f"expires_in: must be > 0 and <= {max_expiry:g} seconds, got {expires_in:g}"
        )
    return False, expires_in


async def _form(request: Request, allow_get: bool = False) -> dict[str, str]:
    """The form-encoded body as a dict; RFC 6749 §3.2 forbids repeated parameters."""
    if request.method == "GET" and allow_get:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        body = await read_limited(request, MAX_FORM_BYTES)
    except BodyTooLarge:
        raise OAuthError("invalid_request", "request body too large", 413) from None
    if not body:
        return {}
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "body must be application/x-www-form-urlencoded")
    try:
        parsed = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=50, strict_parsing=True
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "malformed form body") from None
    repeated = [k for k, v in parsed.items() if len(v) > 1]
    if repeated:
        raise OAuthError("invalid_request", f"parameter repeated: {', '.join(sorted(repeated))}")
    return {k: v[0] for k, v in parsed.items()}


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise OAuthError("invalid_client", "unsupported authorization scheme", 401)
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_client", "malformed basic credentials", 401) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed basic credentials", 401)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def _hand_over(request: Request, key: str, value: object) -> None:
    """Tell the metrics middleware (outside the endpoint) a fact it labels the request with;
    without the middleware (a bare app in a test) there is no one to tell."""
    facts = request.scope.get(STATE_KEY)
    if isinstance(facts, dict):
        facts[key] = value


def _oauth_error(exc: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="tokenslo-idp"'
    body = json.dumps({"error": exc.error, "error_description": exc.description})
    return Response(body, status_code=exc.status, headers=headers, media_type="application/json")
