"""What the load-test clients send and expect, free of Locust so the gate and tests can use it.

Request names are stable: SLO files name them in ``loadtest.requests``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

CC = "token:client_credentials"
REFRESH = "token:refresh_token"
INTROSPECT = "introspect"
REVOKE = "revoke"
JWKS = "jwks"
API = "api:resource"
DISCOVERY = "discovery"
REQUEST_NAMES = (CC, REFRESH, INTROSPECT, REVOKE, JWKS, API, DISCOVERY)
ENV_SCENARIO = "TOKENSLO_SCENARIO"  # which scenario tokenslo/load/locustfile.py exposes
TOKEN = "token_endpoint"
JWKS_URI = "jwks_uri"
INTROSPECTION = "introspection_endpoint"
REVOCATION = "revocation_endpoint"


@dataclass(frozen=True)
class ScenarioNeeds:
    """What one scenario sends and what it cannot run without (pure data).

    ``sends``: the request names it may send (SLOs naming none of them are not gated).
    ``endpoints``: metadata fields (RFC 8414) it needs; a target without one is refused
    before any load. ``api``: ``required`` (refused without an API URL), ``optional``
    (its API tasks do nothing without one), or ``unused``. ``roles``: the target's client
    roles it cannot run without (every scenario needs ``load``); the mixed scenario's
    introspection is optional (skipped, and not gated, without an introspection client).
    Clients authenticate with client_secret_basic.
    """

    sends: tuple[str, ...]
    endpoints: tuple[str, ...]
    api: Literal["required", "optional", "unused"] = "unused"
    roles: tuple[str, ...] = ("load",)


# Scenario → needs; the keys are the scenario names (users.SCENARIOS has one Locust user
# class per key). Locust-free, so the CLI checks a scenario without importing Locust.
NEEDS: dict[str, ScenarioNeeds] = {
    "mixed": ScenarioNeeds(
        (API, INTROSPECT, CC, REFRESH, JWKS, REVOKE, DISCOVERY),
        (TOKEN, JWKS_URI, INTROSPECTION, REVOCATION),
        api="optional",
    ),
    "issuance": ScenarioNeeds((CC,), (TOKEN,)),
    "refresh": ScenarioNeeds((CC, REFRESH), (TOKEN,)),
    "introspection": ScenarioNeeds(
        (CC, INTROSPECT), (TOKEN, INTROSPECTION), roles=("load", "introspection")
    ),
    "revocation": ScenarioNeeds((CC, REVOKE), (TOKEN, REVOCATION)),
    "jwks": ScenarioNeeds((JWKS,), (JWKS_URI,)),
    "api": ScenarioNeeds((CC, API), (TOKEN,), api="required"),
    "fresh-api": ScenarioNeeds((CC, API), (TOKEN,), api="required"),
}
SCENARIO_NAMES = tuple(NEEDS)

# OAuth errors (RFC 6749 §5.2, RFC 7009 §2.2.1) that say the client or the provider's
# configuration is wrong: no amount of load explains them, so a run that meets only these
# stops early instead of hammering the target for its whole duration.
UNEXPLAINED_BY_LOAD = frozenset(
    {
        "invalid_client",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "unsupported_token_type",
    }
)

FORM = "application/x-www-form-urlencoded"
ERROR_CODE = re.compile(r"[a-z]+(?:_[a-z]+){1,6}")
# Renew an access token once this share of its lifetime has passed (exp − 10% of TTL).
RENEW_AT = 0.9


def parse_json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def judge(status: int | None, body: Any, required: str | None = None) -> str | None:
    """Why a response is unusable (None when it is fine): ``401 invalid_client``, ``503``,
    ``connection error`` … — the status and the OAuth ``error`` code, never the body.

    ``required`` names a key the JSON body must have (``access_token``, ``keys`` …);
    ``active`` must also be a boolean (RFC 7662 §2.2).
    """
    if not status:
        return "connection error"
    if not 200 <= status < 300:
        error = body.get("error") if isinstance(body, dict) else None
        return f"{status} {error}" if _is_error_code(error) else str(status)
    if required is None:
        return None
    if not isinstance(body, dict) or required not in body:
        return f"{status} but the body has no {required!r}"
    if required == "active" and not isinstance(body["active"], bool):
        return f"{status} but 'active' is not a boolean"
    return None


def _is_error_code(value: Any) -> bool:
    """An OAuth error code as IdPs send them (``invalid_client``, ``slow_down``): lowercase
    words joined by underscores. Anything else is not echoed, so no token value or free
    text an IdP puts in ``error`` can reach a report."""
    return isinstance(value, str) and ERROR_CODE.fullmatch(value) is not None


def oauth_error(message: str | None) -> str | None:
    """The OAuth ``error`` of a ``judge`` message: ``401 invalid_client`` → ``invalid_client``."""
    parts = (message or "").split()
    if len(parts) == 2 and parts[0].isdigit():
        return parts[1]
    return None


@dataclass
class TokenSet:
    access_token: str
    refresh_token: str | None
    renew_at: float  # time.monotonic() after which the client renews

    @classmethod
    def from_response(cls, body: dict, now: float) -> TokenSet:
        ttl = body.get("expires_in")
        lifetime = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else 60.0
        return cls(body["access_token"], body.get("refresh_token"), now + RENEW_AT * lifetime)

    def fresh(self, now: float) -> bool:
        return now < self.renew_at
