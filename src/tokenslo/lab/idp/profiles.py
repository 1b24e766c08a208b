"""Token profiles: a lab fault that makes the IdP issue *bad* tokens for a client.

A real IdP "changes" (a new claims mapper, a scope policy, an audience typo) and
starts issuing tokens that are well signed but wrong. A profile reproduces that for
one registered client (or ``*``, every client) until it expires:

* ``audience``: the tokens are issued for another audience (guide failure F10);
* ``scope``: this scope instead of the requested one, e.g. without the write scope
  a route needs (F7);
* ``extra_claims_bytes``: a bloat claim (a list of group names) of about that many
  bytes, so tokens outgrow headers (F6, metric M11).

Like every lab fault it carries an expiry the server enforces (the fault engine's
bound), so a crashed experiment cannot leave the IdP issuing bad tokens. The parser is
pure; ``ProfileStore`` holds the active profiles behind one lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenslo.lab.faults.engine import number_field

ALL_CLIENTS = "*"
PROFILE_FIELDS = ("client_id", "expires_in", "audience", "scope", "extra_claims_bytes")
# Bloat beyond this would outgrow the lab servers' whole header limit (16 KiB, base64
# adds a third): the gateway must still see the request to answer 431 itself.
MAX_EXTRA_CLAIMS_BYTES = 8192
MAX_AUDIENCE_LENGTH = 256
MAX_SCOPE_LENGTH = 1024
BLOAT_CLAIM = "groups"
_GROUP = "lab-group-{:05d}"  # 15 characters, 18 bytes in a JSON list with quotes and comma
_GROUP_BYTES = len(_GROUP.format(0)) + 3
# RFC 6749 §3.3 scope-token characters, separated by single spaces.
_SCOPE = re.compile(r"^(?:[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*)?$")


@dataclass(frozen=True)
class TokenProfile:
    """What the IdP changes in the tokens of ``client_id`` until ``expires_at``."""

    client_id: str
    expires_at: float
    audience: str | None = None
    scope: str | None = None
    extra_claims_bytes: int = 0
    groups: tuple[str, ...] = field(default=(), repr=False)

    def describe(self) -> str:
        """One log line; names the changes, never token values."""
        parts = [f"client={self.client_id}"]
        if self.audience is not None:
            parts.append(f"audience={self.audience}")
        if self.scope is not None:
            parts.append(f"scope={self.scope or '(none)'}")
        if self.extra_claims_bytes:
            parts.append(f"extra_claims_bytes={self.extra_claims_bytes}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "expires_at": self.expires_at,
            "audience": self.audience,
            "scope": self.scope,
            "extra_claims_bytes": self.extra_claims_bytes,
        }


def bloat_groups(size: int) -> tuple[str, ...]:
    """Group names whose JSON list is about ``size`` bytes (at least one name)."""
    return tuple(_GROUP.format(i) for i in range(max(1, size // _GROUP_BYTES)))


def parse_profile(
    body: object, *, now: float, max_expiry: float, clients: Collection[str]
) -> TokenProfile:
    """A ``POST /admin/token-profiles`` body as a profile; ValueError names the bad field.

    ``client_id`` must be a registered client or ``*``, so the set of profiles (and what
    the logs name) stays bounded; at least one change is required.
    """
    if not isinstance(body, Mapping):
        raise ValueError("body: must be a JSON object")
    unknown = sorted(set(body) - set(PROFILE_FIELDS))
    if unknown:
        shown = unknown[0] if unknown[0].isprintable() and len(unknown[0]) <= 60 else "a field"
        raise ValueError(f"{shown}: unknown field (allowed: {', '.join(PROFILE_FIELDS)})")
    client_id = body.get("client_id")
    if not isinstance(client_id, str) or (client_id != ALL_CLIENTS and client_id not in clients):
        raise ValueError("client_id: required, a registered client id or '*' (every client)")
    expires_in = number_field(body, "expires_in")
    if expires_in is None or not 0 < expires_in <= max_expiry:
        raise ValueError(f"expires_in: required, seconds > 0 and <= {max_expiry:g}")
    audience = _text(body, "audience", MAX_AUDIENCE_LENGTH, allow_empty=False)
    scope = _text(body, "scope", MAX_SCOPE_LENGTH, allow_empty=True)
    if scope is not None and not _SCOPE.match(scope):
        raise ValueError("scope: space-separated scope tokens (RFC 6749 §3.3), or '' for none")
    extra = body.get("extra_claims_bytes", 0)
    if isinstance(extra, bool) or not isinstance(extra, int):
        raise ValueError("extra_claims_bytes: must be an integer number of bytes")
    if not 0 <= extra <= MAX_EXTRA_CLAIMS_BYTES:
        raise ValueError(f"extra_claims_bytes: must be between 0 and {MAX_EXTRA_CLAIMS_BYTES}")
    if audience is None and scope is None and not extra:
        raise ValueError("body: give at least one of audience, scope and extra_claims_bytes")
    return TokenProfile(
        client_id=client_id,
        expires_at=now + expires_in,
        audience=audience,
        scope=scope,
        extra_claims_bytes=extra,
        groups=bloat_groups(extra) if extra else (),
    )


def _text(body: Mapping[str, Any], key: str, limit: int, *, allow_empty: bool) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or (not value and not allow_empty):
        raise ValueError(f"{key}: must be a {'' if allow_empty else 'non-empty '}string")
    if len(value) > limit or not value.isprintable():
        raise ValueError(f"{key}: at most {limit} printable characters")
    return value


class ProfileStore:
    """The active profiles by client id; expired ones are dropped (and reported) on read.

    ``on_change(action, profile)`` is told of every end (``remove`` or ``expire``) so
    the IdP counts it as a fault change; ``clock`` is real time, never a skewed one.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        on_change: Callable[[str, TokenProfile], None] = lambda _a, _p: None,
    ) -> None:
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._profiles: dict[str, TokenProfile] = {}

    def set(self, profile: TokenProfile) -> None:
        """A new profile for a client replaces its old one."""
        with self._lock:
            self._profiles[profile.client_id] = profile

    def active(self, client_id: str) -> TokenProfile | None:
        """The client's own profile, else the one for every client."""
        self.expire_due()
        with self._lock:
            return self._profiles.get(client_id) or self._profiles.get(ALL_CLIENTS)

    def remove(self, client_id: str | None = None) -> int:
        """Remove one client's profile (``None``: all); returns how many were removed."""
        self.expire_due()
        with self._lock:
            keys = list(self._profiles) if client_id is None else [client_id]
            removed = [p for k in keys if (p := self._profiles.pop(k, None)) is not None]
        for profile in removed:
            self._on_change("remove", profile)
        return len(removed)

    def snapshot(self) -> list[TokenProfile]:
        self.expire_due()
        with self._lock:
            return list(self._profiles.values())

    def __len__(self) -> int:
        return len(self.snapshot())

    def expire_due(self) -> None:
        now = self._clock()
        with self._lock:
            due = [k for k, p in self._profiles.items() if p.expires_at <= now]
            expired = [self._profiles.pop(k) for k in due]
        for profile in expired:
            self._on_change("expire", profile)
