"""JWKS cache: TTL refresh, one refresh on an unknown kid, a cooldown, stale-if-error.

An attacker controls the ``kid`` of every token it sends, so "refresh on unknown
kid" must not become "refresh on every request": refreshes are rate-limited by
``cooldown`` whatever triggers them. When the IdP's JWKS endpoint fails, the
keys we already have keep working (a JWKS outage must not become an API
outage), and ``gateway_jwks_cache_age_seconds`` shows how stale they are.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import Key, import_key

from tokenslo.lab.logsafe import clean

log = logging.getLogger("tokenslo.lab.gateway")

_ASYMMETRIC = frozenset({"RSA", "EC", "OKP"})


class JWKSError(Exception):
    """The JWKS document could not be fetched or parsed."""


def parse_jwks(document: Any) -> dict[str, Key]:
    """Public signing keys by kid; keys we must not or cannot use are skipped.

    Skipped: symmetric (``oct``) keys — a JWKS never legitimately carries them and
    accepting one would re-open HMAC confusion —, keys whose ``use`` is not
    ``sig``, keys without a kid, keys that fail to import, and duplicate kids
    (ambiguous, so neither is trusted).
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JWKSError("JWKS document has no 'keys' list")
    keys: dict[str, Key] = {}
    duplicates: set[str] = set()
    for entry in document["keys"]:
        key = _import_public(entry)
        if key is None:
            continue
        kid = entry["kid"]
        if kid in keys:
            duplicates.add(kid)
        keys[kid] = key
    for kid in duplicates:
        del keys[kid]
    return keys


def _import_public(entry: Any) -> Key | None:
    if not isinstance(entry, Mapping):
        return None
    kid, kty = entry.get("kid"), entry.get("kty")
    if not isinstance(kid, str) or not kid or kty not in _ASYMMETRIC:
        return None
    if entry.get("use", "sig") != "sig":
        return None
    private_members = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
    public = {k: v for k, v in entry.items() if k not in private_members}
    try:
        return import_key(public)
    except (JoseError, ValueError, TypeError, KeyError):
        return None


class JWKSCache:
    """Keys of one issuer; ``get`` is what the validator calls per token.

    ``fetch`` returns the parsed JWKS document or raises; ``on_refresh`` is told
    ``"success"``/``"error"`` (metrics). ``clock`` is monotonic: cache ageing must
    not follow the fault engine's clock offset.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Any]],
        *,
        ttl: float,
        cooldown: float,
        on_refresh: Callable[[str], None] = lambda outcome: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.ttl = ttl
        self.cooldown = cooldown
        self._on_refresh = on_refresh
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    def age(self) -> float:
        """Seconds since the last successful fetch; +Inf when there never was one."""
        if self._loaded_at is None:
            return math.inf
        return max(0.0, self._clock() - self._loaded_at)

    def stale(self) -> bool:
        return self.age() >= self.ttl

    def may_refresh(self) -> bool:
        """False while in cooldown since the last attempt (successful or not)."""
        return self._attempted_at is None or self._clock() - self._attempted_at >= self.cooldown

    async def get(self, kid: str | None) -> Key | None:
        """The key for ``kid``, refreshing at most once (stale cache or unknown kid)."""
        if self.stale() and self.may_refresh():
            await self.refresh()
        if kid is None:
            return None
        key = self._keys.get(kid)
        if key is None and self.may_refresh():
            await self.refresh()
            key = self._keys.get(kid)
        return key

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the JWKS unless another caller just did; keep the old keys on failure."""
        async with self._lock:
            if not force and not self.may_refresh():
                return False  # someone refreshed while we waited for the lock
            self._attempted_at = self._clock()
            try:
                keys = parse_jwks(await self._fetch())
            except Exception as exc:  # noqa: BLE001 - any fetch failure means "keep stale keys"
                self._on_refresh("error")
                log.warning(
                    "jwks refresh failed (%s); keeping %d cached keys",
                    _describe(exc),
                    len(self._keys),
                )
                return False
            self._keys = keys
            self._loaded_at = self._clock()
            self._on_refresh("success")
            log.info("jwks refreshed: %d keys, kids=%s", len(keys), clean(",".join(sorted(keys))))
            return True


def _describe(exc: BaseException) -> str:
    """Exception class and message, without anything that could echo a token."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
