"""Replay detection: one access token presented from more sources than its owner has.

A bearer token works for whoever holds it (RFC 6750 §5.2), so a leaked token shows
only in *where* it is used from. The gateway remembers, for each token id (``jti``)
until the token expires, the distinct sources it came from: a source is the client
address, the User-Agent and optionally one configured header (a device id), hashed.
A token seen from more than ``max_sources`` of them is a suspected replay, counted once
per source beyond that.

Only tokens the gateway has verified and accepted reach :class:`ReplayDetector`
(``app.py``): a forged token costs its sender nothing, so its ``jti`` must not be able
to raise anything. Memory is bounded: at most ``max_tokens`` ids (the soonest-expiring
one is evicted first), at most ``SOURCES_PER_TOKEN`` sources each (beyond that a token
counts nothing more: its alert already fired), expired entries pruned on every call.
Nothing here holds a token or a jti in clear: ids and sources are SHA-256 digests. Pure:
the caller passes the time.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass

# Hex digits: the ``token_bucket`` label of the replay counter (first digit of sha256(jti)).
BUCKETS = tuple("0123456789abcdef")
# Distinct sources remembered per token; replay_max_sources must stay below it.
SOURCES_PER_TOKEN = 16
DEFAULT_MAX_SOURCES = 1
DEFAULT_MAX_TOKENS = 100_000
_DIGEST_BYTES = 16  # 128 bits: collisions among 100k ids or 16 sources are negligible


def jti_hash(jti: str) -> str:
    """SHA-256 of the jti in hex: what logs and labels may show of a token id."""
    return hashlib.sha256(jti.encode("utf-8")).hexdigest()


def token_bucket(jti: str) -> str:
    """One of the 16 ``BUCKETS``: a bounded label that still groups one token's events."""
    return jti_hash(jti)[0]


def source_fingerprint(address: str, user_agent: str, device: str = "") -> bytes:
    """The hashed identity of where a request came from (NUL cannot occur in headers)."""
    joined = "\0".join((address, user_agent, device)).encode("utf-8", "surrogateescape")
    return hashlib.sha256(joined).digest()[:_DIGEST_BYTES]


@dataclass(frozen=True)
class Suspicion:
    """One more source than allowed for one token: what the gateway counts and logs."""

    jti_sha256_12: str
    bucket: str
    sources: int  # distinct sources seen so far, this one included


@dataclass
class _Entry:
    expires_at: float
    sources: list[bytes]


class ReplayDetector:
    """Distinct sources per token id, until each token expires; bounded (module docstring)."""

    def __init__(
        self, max_sources: int = DEFAULT_MAX_SOURCES, max_tokens: int = DEFAULT_MAX_TOKENS
    ):
        if not 1 <= max_sources < SOURCES_PER_TOKEN:
            raise ValueError(f"max_sources must be in [1, {SOURCES_PER_TOKEN - 1}]")
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        self.max_sources = max_sources
        self.max_tokens = max_tokens
        self._entries: dict[bytes, _Entry] = {}
        # (expires_at, insertion number, key): the soonest-expiring (then oldest) first.
        # Entries leave the dict only through this heap, so the two always agree.
        self._expiries: list[tuple[float, int, bytes]] = []
        self._inserted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def observe(self, jti: str, expires_at: float, source: bytes, now: float) -> Suspicion | None:
        """Record that the token ``jti`` (accepted until ``expires_at``) came from
        ``source``; a ``Suspicion`` when that source is one more than allowed."""
        self.prune(now)
        if expires_at <= now:
            return None
        digest = jti_hash(jti)
        key = bytes.fromhex(digest)[:_DIGEST_BYTES]
        entry = self._entries.get(key)
        if entry is None:
            self._track(key, expires_at, source)
            return None
        if source in entry.sources or len(entry.sources) >= SOURCES_PER_TOKEN:
            return None
        entry.sources.append(source)
        if len(entry.sources) <= self.max_sources:
            return None
        return Suspicion(digest[:12], digest[0], len(entry.sources))

    def prune(self, now: float) -> int:
        """Forget tokens that have expired by ``now``; returns how many."""
        pruned = 0
        while self._expiries and self._expiries[0][0] <= now:
            self._pop()
            pruned += 1
        return pruned

    def _track(self, key: bytes, expires_at: float, source: bytes) -> None:
        while len(self._entries) >= self.max_tokens:
            self._pop()
        self._entries[key] = _Entry(expires_at, [source])
        self._inserted += 1
        heapq.heappush(self._expiries, (expires_at, self._inserted, key))

    def _pop(self) -> None:
        _expires_at, _n, key = heapq.heappop(self._expiries)
        del self._entries[key]
