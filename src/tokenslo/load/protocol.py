"""What the load-test clients send and expect, free of Locust so the gate and tests can use it.

Request names are stable: SLO files name them in ``loadtest.requests``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CC = "token:client_credentials"
REFRESH = "token:refresh_token"
INTROSPECT = "introspect"
REVOKE = "revoke"
JWKS = "jwks"
API = "api:resource"
DISCOVERY = "discovery"
REQUEST_NAMES = (CC, REFRESH, INTROSPECT, REVOKE, JWKS, API, DISCOVERY)
# Scenario → locustfile user class (tokenslo.load.users.SCENARIOS); kept here so the CLI
# can reject an unknown scenario without importing Locust.
ENV_SCENARIO = "TOKENSLO_SCENARIO"  # which scenario tokenslo/load/locustfile.py exposes
SCENARIO_NAMES = (
    "mixed", "issuance", "refresh", "introspection", "revocation", "jwks", "api", "fresh-api",
)  # fmt: skip

FORM = "application/x-www-form-urlencoded"
# Renew an access token once this share of its lifetime has passed (exp − 10% of TTL).
RENEW_AT = 0.9


def parse_json(text: str | None) -> Any:
    try:
        return json.loads(text or "")
    except ValueError:
        return None


def judge(status: int | None, body: Any, required: str | None = None) -> str | None:
    """Why a response is unusable (None when it is fine).

    ``required`` names a key the JSON body must have (``access_token``, ``keys`` …);
    ``active`` must also be a boolean (RFC 7662 §2.2).
    """
    if not status:
        return "no response"
    if not 200 <= status < 300:
        error = body.get("error") if isinstance(body, dict) else None
        return f"HTTP {status}" + (f" {error}" if isinstance(error, str) else "")
    if required is None:
        return None
    if not isinstance(body, dict) or required not in body:
        return f"HTTP {status} but the body has no {required!r}"
    if required == "active" and not isinstance(body["active"], bool):
        return "HTTP 200 but 'active' is not a boolean"
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
