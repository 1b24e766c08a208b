"""Authorization after validation: does a valid token carry the scopes its route requires?

Validation says *who* issued the token; this says *what* it may do. The two are counted
apart on purpose: a token refused here was validated successfully (it stays ``valid`` in
``gateway_token_validations_total``) and is answered 403 ``insufficient_scope`` (RFC 6750
§3.1), not 401. The check is a pure function of the route's required scopes and the
token's ``scope`` claim (a JWT's claim or an introspection answer's member, both a
space-separated string per RFC 9068 §2.2.3 and RFC 7662 §2.2).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALLOW = "allow"
DENY = "deny"
OK = "ok"
INSUFFICIENT_SCOPE = "insufficient_scope"
# The (outcome, reason) pairs the decisions counter has; each series exists from the start.
DECISIONS = ((ALLOW, OK), (DENY, INSUFFICIENT_SCOPE))
# RFC 6749 §3.3 scope-token: printable ASCII without space, '"' and '\', so a configured
# scope can never break out of the quoted ``scope`` attribute of a challenge.
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")


@dataclass(frozen=True)
class Decision:
    """The verdict on one validated request; ``missing`` lists required scopes not granted."""

    outcome: str
    reason: str
    missing: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome == ALLOW


def granted_scopes(claim: Any) -> frozenset[str]:
    """The scopes a ``scope`` claim grants: a space-separated string, any extra whitespace
    ignored. A missing claim, or one of another JSON type, grants nothing (deny by default
    rather than guess at an IdP's private format)."""
    if not isinstance(claim, str):
        return frozenset()
    return frozenset(claim.split())


def decide(required: Iterable[str], claims: Mapping[str, Any]) -> Decision:
    """Allow when every required scope is granted (an empty requirement allows any token)."""
    granted = granted_scopes(claims.get("scope"))
    missing = tuple(scope for scope in required if scope not in granted)
    if missing:
        return Decision(DENY, INSUFFICIENT_SCOPE, missing)
    return Decision(ALLOW, OK)


def route_key(method: str, path: str) -> str:
    """How the gateway config names a route: ``GET /api/resource``. HEAD is GET's twin."""
    method = method.upper()
    return f"{'GET' if method == 'HEAD' else method} {path}"


def check_scope_tokens(scopes: Collection[Any]) -> tuple[str, ...]:
    """The scopes as a tuple, or ``ValueError`` naming the first that is no RFC 6749 token."""
    for scope in scopes:
        if not isinstance(scope, str) or not SCOPE_TOKEN.match(scope):
            raise ValueError(f"{scope!r} is not a scope (RFC 6749 §3.3 scope-token)")
    return tuple(dict.fromkeys(scopes))


def scopes_beyond_registration(
    client_id: object, claims: Mapping[str, Any], registrations: Mapping[str, Collection[str]]
) -> tuple[str, ...]:
    """The scopes a validated token carries beyond what its client is registered for, sorted.

    An IdP that keeps to its registrations never issues these; one that does was
    misconfigured or compromised, so the gateway counts and logs them (the route's own
    scope check is unchanged). Empty when the client has no known registration: a client
    listed without scopes, or none at all, cannot be judged. ``client_id`` must be one
    the issuer vouched for (``Outcome.client_id``), so a forged token cannot move this.
    """
    if not isinstance(client_id, str) or client_id not in registrations:
        return ()
    allowed = registrations[client_id]
    return tuple(sorted(s for s in granted_scopes(claims.get("scope")) if s not in allowed))
