"""What detect-secrets does not know: bearer tokens in ``Authorization`` headers, and
what a JWT's claims say about its use to a thief.

A JWT is read WITHOUT verifying its signature (joserfc splits the compact form and
insists on a header with ``alg``): the scanner has no key, and an attacker holding the
token does not need one either — ``exp`` alone says how long it still opens doors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError

# `Authorization: Bearer …` as a header line, a curl -H argument, a Python/JSON mapping
# entry; the token is RFC 6750's b64token. Shell variables (`$TOKEN`), CI masks (`***`)
# and placeholders (`<token>`) are not b64token, so they do not match.
BEARER = re.compile(
    r"authorization[\"']?\s*[:=]\s*[\"']?\s*bearer\s+([A-Za-z0-9\-._~+/]{16,}=*)",
    re.IGNORECASE,
)
# The three segments of a compact JWS, from where a match of detect-secrets starts
# (its own pattern stops before the signature).
COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

VALID, EXPIRED, NO_EXP, UNREADABLE = "valid", "expired", "no exp", "unreadable"


@dataclass(frozen=True)
class JwtState:
    """What the claims say: ``status`` (valid, expired, no exp, unreadable) and, when
    there is a usable ``exp``, when it ends (ISO 8601, UTC, ``Z``)."""

    status: str
    expires: str | None = None


def bearer_tokens(line: str) -> list[str]:
    """The bearer tokens of ``Authorization`` headers on one line."""
    return BEARER.findall(line)


def whole_jwt(line: str, found: str) -> str:
    """The complete compact token (signature included) starting where ``found`` does."""
    start = line.find(found)
    match = COMPACT.match(line, start) if start >= 0 else None
    return match.group(0) if match else found


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The unverified claims of ``token``. Raises ``ValueError`` when ``token`` is no
    JWT (not three segments, header not JSON or without ``alg``); ``None`` when it is
    one whose payload is not a JSON object (encrypted or detached content)."""
    try:
        payload = jws.extract_compact(token.encode("ascii")).payload
    except (JoseError, ValueError, UnicodeError) as exc:
        raise ValueError("not a JWT") from exc
    try:
        claims = json.loads(payload)
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def jwt_state(claims: dict[str, Any] | None, now: datetime) -> JwtState:
    """Still usable at ``now`` by ``exp`` (RFC 7519 §4.1.4: unusable at or after it)."""
    if claims is None:
        return JwtState(UNREADABLE)
    if "exp" not in claims:
        return JwtState(NO_EXP)
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return JwtState(UNREADABLE)
    try:
        at = datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return JwtState(UNREADABLE)
    expires = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return JwtState(VALID if at > now else EXPIRED, expires)
