"""Revocation: the polled revocation list (JWTs) and cached introspection (opaque tokens).

A self-contained JWT stays valid until ``exp`` unless the gateway learns of its
revocation, so the gateway polls the IdP's revocation list every
``revocation_poll_interval`` seconds: that interval (plus one request) bounds
revocation propagation for JWTs. Opaque tokens are introspected (RFC 7662) and
the answer is cached for ``introspection_cache_ttl`` seconds, which bounds
their propagation the same way. On a failed poll the last list stays in force.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from tokenslo.jws import canonical_jws

log = logging.getLogger("tokenslo.lab.gateway")


class RevocationList:
    """Revoked JWT ids from the IdP, merged with what we knew on every successful poll.

    An entry the IdP no longer lists stays until its token's ``exp``: an IdP
    that lost its list (a restart without its revocations file) must not make
    a revoked, unexpired token valid again. Revocation is never undone in OAuth.
    """

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ):
        self._revoked: dict[str, float | None] = {}
        self._clock = clock
        self._wall = wall
        self._updated_at: float | None = None

    def __contains__(self, jti: object) -> bool:
        return jti in self._revoked

    def __len__(self) -> int:
        return len(self._revoked)

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def replace(self, document: Any) -> int:
        """Merge in the IdP's ``{"revoked": [{"jti", "exp"}]}``; returns the entry count."""
        listed = parse_revocation_list(document)
        now = self._wall()
        for jti, exp in self._revoked.items():
            if jti not in listed and exp is not None and exp > now:
                listed[jti] = exp
        self._revoked = listed
        self._updated_at = self._clock()
        return len(self._revoked)

    def age(self) -> float:
        """Seconds since the last successful poll; +Inf before the first."""
        if self._updated_at is None:
            return math.inf
        return max(0.0, self._clock() - self._updated_at)


def parse_revocation_list(document: Any) -> dict[str, float | None]:
    if not isinstance(document, Mapping) or not isinstance(document.get("revoked"), list):
        raise ValueError("revocation list has no 'revoked' list")
    revoked: dict[str, float | None] = {}
    for entry in document["revoked"]:
        jti = entry.get("jti") if isinstance(entry, Mapping) else entry
        if isinstance(jti, str) and jti:
            exp = entry.get("exp") if isinstance(entry, Mapping) else None
            revoked[jti] = _timestamp(exp)
    return revoked


def _timestamp(value: Any) -> float | None:
    """A finite float exp, or None (unknown: kept only while the IdP lists it)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class IntrospectionCache:
    """Short-lived cache of introspection responses, keyed by the token's full SHA-256.

    Bounded in size (oldest entries evicted first) so a flood of random opaque
    tokens cannot grow memory without limit.
    """

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Mapping[str, Any]]] = OrderedDict()

    @staticmethod
    def key(token: str) -> str:
        """Both ECDSA twins of a JWT (an unknown-kid one is introspected) share one entry."""
        return hashlib.sha256(canonical_jws(token).encode("utf-8")).hexdigest()

    def get(self, token: str) -> Mapping[str, Any] | None:
        key = self.key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, response = entry
        if self._clock() - stored_at >= self.ttl:
            del self._entries[key]
            return None
        return response

    def put(self, token: str, response: Mapping[str, Any]) -> None:
        if self.ttl <= 0:
            return
        key = self.key(token)
        self._entries[key] = (self._clock(), response)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
