"""Gateway configuration: the YAML of the lab contract as a frozen dataclass.

Bad input is reported as one ``InputError`` naming the file, line and field, so
``tokenslo lab up`` and ``python -m tokenslo.lab.gateway`` can fail without a
traceback. Algorithms that RFC 8725 forbids for this use (``none``, HMAC) are
refused here too, so a config typo can never switch the gateway to trusting them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tokenslo.errors import InputError
from tokenslo.lab.gateway.replay import DEFAULT_MAX_SOURCES, DEFAULT_MAX_TOKENS, SOURCES_PER_TOKEN
from tokenslo.lab.gateway.scopes import check_scope_tokens
from tokenslo.spec.yamlpos import parse_document, read_document, read_text

# Asymmetric algorithms the validator knows how to check against a JWK's kty/crv.
SUPPORTED_ALGS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
ADMIN_SECRET_ENV = "TOKENSLO_ADMIN_SECRET"
# The routes behind Bearer auth and the scopes each requires of a valid token by default
# (all of them; an empty list requires none). ``route_scopes`` overrides them per route.
DEFAULT_ROUTE_SCOPES: Mapping[str, tuple[str, ...]] = {
    "GET /api/resource": ("api.read",),
    "POST /api/resource": ("api.write",),
}


@dataclass(frozen=True)
class GatewayConfig:
    """Settings of one gateway process (see the lab contract for each field)."""

    host: str = "127.0.0.1"
    port: int = 9401
    issuer: str = "http://127.0.0.1:9400"
    audience: str = "api://lab"
    jwks_ttl: float = 300.0
    jwks_refresh_cooldown: float = 10.0
    leeway: float = 60.0
    # An Authorization credential longer than this is answered 431 (result too_large).
    max_token_bytes: int = 8192
    allowed_algs: tuple[str, ...] = ("ES256", "RS256", "EdDSA")
    revocation_poll_interval: float = 2.0
    introspection_cache_ttl: float = 5.0
    # IdP introspection calls per second (burst: twice that); anyone can cause them.
    introspection_rate_limit: float = 50.0
    # Tokens whose exp - iat exceeds this are refused (seconds; 0 = no maximum).
    max_token_lifetime: float = 86400.0
    credentials_file: str | None = ".tokenslo/lab/credentials.yaml"
    upstream: str | None = None
    # Not in the contract's example but needed to keep the IdP calls bounded.
    http_timeout: float = 2.0
    credentials_client_id: str = "gateway"
    # "METHOD /path" → scopes a valid token must carry; routes left out keep their default.
    route_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Replay detection (replay.py): a verified token presented from more than this many
    # distinct sources (client address + User-Agent [+ replay_source_header]) within its
    # lifetime is a suspected replay. 1: a token belongs to one client instance, which
    # keeps its address and User-Agent for the minutes a token lives; roaming clients
    # (mobile networks, NAT pools) need 2.
    replay_max_sources: int = DEFAULT_MAX_SOURCES
    # Token ids remembered at most (the soonest-expiring is forgotten first): bounds memory.
    replay_max_tracked_tokens: int = DEFAULT_MAX_TOKENS
    # A request header that tells client instances apart (e.g. X-Device-Id), or null.
    replay_source_header: str | None = None
    # The IdP's registered client ids: the only client_id label values besides "unknown".
    # YAML: a list of ids, or a mapping ``{id: {scopes: [...]}}`` that also gives each
    # client's registered scopes (``client_scopes``; an id without ``scopes`` is not judged).
    clients: tuple[str, ...] = ()
    # client id -> the scopes it is registered for: a verified token of that client with
    # any other scope is counted in gateway_scope_beyond_registration_total. Set through
    # ``clients`` only.
    client_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def required_scopes(self, route: str) -> tuple[str, ...]:
        """The scopes ``route`` (``GET /api/resource``) requires: configured, else default."""
        return tuple(self.route_scopes.get(route, DEFAULT_ROUTE_SCOPES.get(route, ())))

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/oauth-authorization-server"


_NUMBER_FIELDS = {
    "jwks_ttl": (0.0, False),
    "jwks_refresh_cooldown": (0.0, True),
    "leeway": (0.0, True),
    "revocation_poll_interval": (0.0, False),
    "introspection_cache_ttl": (0.0, True),
    "introspection_rate_limit": (0.0, False),
    "max_token_lifetime": (0.0, True),
    "http_timeout": (0.0, False),
}
# integer setting -> (minimum, maximum or None, what it is): "must be an <what> between ..."
_INT_FIELDS: dict[str, tuple[int, int | None, str]] = {
    "port": (0, 65535, "integer port"),
    "max_token_bytes": (64, None, "integer"),
    "replay_max_sources": (1, SOURCES_PER_TOKEN - 1, "integer"),
    "replay_max_tracked_tokens": (1, None, "integer"),
}
# RFC 9110 §5.1 field-name (token characters)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_KNOWN = {f.name for f in fields(GatewayConfig)} - {"client_scopes"}


def load_gateway_config(path: str | os.PathLike[str]) -> GatewayConfig:
    """Read and validate a gateway YAML file."""
    return parse_gateway_config(read_text(path), str(path))


def parse_gateway_config(text: str, path: str = "<config>") -> GatewayConfig:
    """Validate YAML text; every error names the file, line and field."""
    doc = parse_document(text, path)
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise InputError("expected a mapping of settings", file=path, line=1)
    lines = {str(key[0]): line for key, (line, _column) in doc.keys.items() if len(key) == 1}
    return config_from_dict(data, path, lines)


def config_from_dict(
    data: dict[str, Any], path: str = "<config>", lines: dict[str, int] | None = None
) -> GatewayConfig:
    """Build a config from an already-parsed mapping (the orchestrator passes dicts)."""
    lines = lines or {}

    def fail(key: str, message: str) -> InputError:
        return InputError(message, file=path, line=lines.get(key), field=key)

    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise fail(unknown[0], f"unknown setting (known: {', '.join(sorted(_KNOWN))})")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "clients":
            values["clients"], values["client_scopes"] = _check_clients(
                value, lambda message: fail("clients", message)
            )
        else:
            values[key] = _check_value(key, value, fail)
    return GatewayConfig(**values)


def _check_value(key: str, value: Any, fail) -> Any:
    if key in ("host", "issuer", "audience", "credentials_client_id"):
        if not isinstance(value, str) or not value:
            raise fail(key, "must be a non-empty string")
        if key == "issuer" and not value.startswith(("http://", "https://")):
            raise fail(key, "must be an http(s) URL")
        return value
    if key in ("credentials_file", "upstream"):
        if value is not None and (not isinstance(value, str) or not value):
            raise fail(key, "must be a non-empty string or null")
        if key == "upstream" and value and not value.startswith(("http://", "https://")):
            raise fail(key, "must be an http(s) URL or null")
        return value
    if key in _INT_FIELDS:
        return _check_int(key, value, fail)
    if key == "replay_source_header":
        if value is not None and (not isinstance(value, str) or not _HEADER_NAME.fullmatch(value)):
            raise fail(key, "must be an HTTP header name (e.g. X-Device-Id) or null")
        return value
    if key in _NUMBER_FIELDS:
        minimum, zero_ok = _NUMBER_FIELDS[key]
        if not _is_number(value) or value < minimum or (value == minimum and not zero_ok):
            raise fail(key, f"must be a number {'>=' if zero_ok else '>'} {minimum:g} (seconds)")
        return float(value)
    if key == "allowed_algs":
        return _check_algs(value, lambda message: fail(key, message))
    if key == "route_scopes":
        return _check_route_scopes(value, lambda message: fail(key, message))
    raise fail(key, "unknown setting")


def _check_algs(value: Any, fail) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise fail("must be a non-empty list of JWS algorithms")
    for alg in value:
        if not isinstance(alg, str):
            raise fail(f"{alg!r} is not a string")
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise fail(f"{alg!r} is refused: access tokens must be signed asymmetrically")
        if alg not in SUPPORTED_ALGS:
            supported = ", ".join(sorted(SUPPORTED_ALGS))
            raise fail(f"{alg!r} is not supported (supported: {supported})")
    return tuple(value)


def _check_route_scopes(value: Any, fail) -> dict[str, tuple[str, ...]]:
    """``{"GET /api/resource": [api.read], …}``: only the gateway's protected routes."""
    if not isinstance(value, dict):
        raise fail("must be a mapping of 'METHOD /path' to a list of scopes")
    routes: dict[str, tuple[str, ...]] = {}
    for route, scopes in value.items():
        if route not in DEFAULT_ROUTE_SCOPES:
            known = ", ".join(DEFAULT_ROUTE_SCOPES)
            raise fail(f"{route!r} is not a protected route (known: {known})")
        if not isinstance(scopes, list):
            raise fail(f"{route}: must be a list of scopes (empty: none required)")
        try:
            routes[route] = check_scope_tokens(scopes)
        except ValueError as exc:
            raise fail(f"{route}: {exc}") from None
    return routes


def _check_clients(value: Any, fail) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """``[id, …]`` or ``{id: {scopes: [scope, …]}, …}``: (ids, id → registered scopes).

    The mapping form lets the gateway judge tokens wider than their client's
    registration; a client given as ``{}`` or ``null`` (no ``scopes``) is not judged.
    """
    if isinstance(value, list):
        if not all(isinstance(c, str) and c for c in value):
            raise fail("must be a list of client ids (non-empty strings)")
        return tuple(value), {}
    if not isinstance(value, dict):
        raise fail("must be a list of client ids or a mapping {client_id: {scopes: [...]}}")
    registrations: dict[str, tuple[str, ...]] = {}
    for client_id, entry in value.items():
        if not isinstance(client_id, str) or not client_id:
            raise fail(f"{client_id!r} is not a client id (a non-empty string)")
        entry = {} if entry is None else entry
        if not isinstance(entry, dict) or set(entry) - {"scopes"}:
            raise fail(f"{client_id}: must be a mapping with only 'scopes' (a list), or null")
        if "scopes" not in entry:
            continue
        if not isinstance(entry["scopes"], list):
            raise fail(f"{client_id}: scopes must be a list of scopes (empty: none)")
        try:
            registrations[client_id] = check_scope_tokens(entry["scopes"])
        except ValueError as exc:
            raise fail(f"{client_id}: {exc}") from None
    return tuple(value), registrations


def _check_int(key: str, value: Any, fail) -> int:
    minimum, maximum, what = _INT_FIELDS[key]
    if maximum is None:
        if not _is_int(value) or value < minimum:
            raise fail(key, f"must be an {what} of at least {minimum}")
    elif not _is_int(value) or not minimum <= value <= maximum:
        raise fail(key, f"must be an {what} between {minimum} and {maximum}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class ClientCredentials:
    """The gateway's own OAuth client (for introspection and the revocation list)."""

    client_id: str
    client_secret: str = field(repr=False)


def load_credentials(path: str | os.PathLike[str], client_id: str = "gateway") -> ClientCredentials:
    """Read the gateway's client credentials from the lab's plaintext credentials file.

    Accepted shapes (the orchestrator owns the file): a mapping with
    ``client_id``/``client_secret``; ``{clients: {<id>: {client_secret|secret}}}``;
    ``{clients: [{client_id, client_secret|secret}]}``; or ``{<id>: {...}}``.
    """
    path = str(path)
    data = read_document(path).data
    entry = _find_client(data, client_id)
    if entry is None:
        raise InputError(f"no credentials for client {client_id!r}", file=path, field="clients")
    secret = entry.get("client_secret", entry.get("secret"))
    if not isinstance(secret, str) or not secret:
        raise InputError(
            f"client {client_id!r} has no client_secret", file=path, field="client_secret"
        )
    return ClientCredentials(client_id=client_id, client_secret=secret)


def _find_client(data: Any, client_id: str) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        return None
    if data.get("client_id") == client_id:
        return data
    clients = data.get("clients", data)
    if isinstance(clients, dict):
        entry = clients.get(client_id)
        if isinstance(entry, dict):
            return entry
    if isinstance(clients, list):
        for entry in clients:
            if isinstance(entry, dict) and entry.get("client_id") == client_id:
                return entry
    return None
