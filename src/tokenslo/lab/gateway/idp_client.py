"""The gateway's calls to its IdP: discovery, JWKS, revocation list, introspection.

Every call has a timeout (``http_timeout``) so a hanging IdP (fault ``hang``)
delays at most one refresh, never the gateway's event loop. Endpoint URLs come
from the issuer's RFC 8414 metadata, whose ``issuer`` must equal the configured
one (RFC 8414 §3.3) — otherwise another server could hand us its keys.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import httpx

from tokenslo.lab.gateway.config import ClientCredentials, GatewayConfig
from tokenslo.lab.gateway.revocation import IntrospectionCache
from tokenslo.lab.gateway.validator import IntrospectionThrottled, TokenBucket


class IdPUnavailable(Exception):
    """The IdP could not answer (network error, timeout, non-2xx, bad JSON)."""


class IdPClient:
    def __init__(
        self,
        config: GatewayConfig,
        http: httpx.AsyncClient,
        credentials: ClientCredentials | None = None,
    ):
        self.config = config
        self.http = http
        self.credentials = credentials
        self._metadata: dict[str, Any] | None = None

    async def metadata(self) -> Mapping[str, Any]:
        """RFC 8414 metadata, fetched once and then reused (endpoints rarely move)."""
        if self._metadata is None:
            document = await self._get_json(self.config.discovery_url, auth=False)
            if document.get("issuer") != self.config.issuer:
                raise IdPUnavailable("discovery issuer does not match the configured issuer")
            self._metadata = dict(document)
        return self._metadata

    async def endpoint(self, name: str, default_path: str) -> str:
        url = (await self.metadata()).get(name)
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url
        return self.config.issuer.rstrip("/") + default_path

    async def fetch_jwks(self) -> Mapping[str, Any]:
        return await self._get_json(await self.endpoint("jwks_uri", "/jwks"), auth=False)

    async def fetch_revocations(self) -> Mapping[str, Any]:
        url = await self.endpoint("tokenslo_revocation_list_endpoint", "/revocations")
        return await self._get_json(url, auth=True)

    async def introspect(self, token: str) -> Mapping[str, Any]:
        url = await self.endpoint("introspection_endpoint", "/introspect")
        data = {"token": token, "token_type_hint": "access_token"}
        try:
            response = await self.http.post(url, data=data, headers=self._auth_headers())
        except httpx.HTTPError as exc:
            raise IdPUnavailable(f"introspection failed: {type(exc).__name__}") from None
        return _json_body(response, "introspection")

    def _auth_headers(self) -> dict[str, str]:
        """client_secret_basic with RFC 6749 §2.3.1's form-encoding of id and secret."""
        if self.credentials is None:
            return {}
        creds = self.credentials
        pair = f"{quote_plus(creds.client_id)}:{quote_plus(creds.client_secret)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    async def _get_json(self, url: str, *, auth: bool) -> Mapping[str, Any]:
        try:
            response = await self.http.get(url, headers=self._auth_headers() if auth else None)
        except httpx.HTTPError as exc:
            raise IdPUnavailable(f"GET {url} failed: {type(exc).__name__}") from None
        return _json_body(response, f"GET {url}")


def _json_body(response: httpx.Response, what: str) -> Mapping[str, Any]:
    if response.status_code != 200:
        raise IdPUnavailable(f"{what}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise IdPUnavailable(f"{what}: response is not JSON") from None
    if not isinstance(body, dict):
        raise IdPUnavailable(f"{what}: response is not a JSON object")
    return body


class CachedIntrospector:
    """Introspection through the short cache and a rate budget; only real answers are cached.

    Every uncached token costs one IdP call, and anyone can send uncached tokens
    (random opaque strings, forged unknown kids), so calls beyond the budget's
    rate raise ``IntrospectionThrottled`` instead of reaching the IdP.
    """

    def __init__(
        self, client: IdPClient, cache: IntrospectionCache, budget: TokenBucket | None = None
    ):
        self.client = client
        self.cache = cache
        self.budget = budget

    async def introspect(self, token: str) -> Mapping[str, Any]:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        if self.budget is not None and not self.budget.take():
            raise IntrospectionThrottled("introspection budget spent")
        response = await self.client.introspect(token)
        self.cache.put(token, response)
        return response
