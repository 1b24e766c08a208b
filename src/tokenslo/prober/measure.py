"""Pure helpers: discovery URLs, clock skew estimates, unverified JWT peeking, token names.

The prober is a black box: it reads what any client could read (HTTP headers, the
token's payload) and never verifies signatures itself, which is the gateway's job.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"


# RFC 6750 §3: the error attribute of a Bearer challenge (quoted, as §3 writes it).
_BEARER_ERROR = re.compile(r'(?:^|[\s,])error\s*=\s*"([^"]*)"')


def bearer_error(challenge: str | None) -> str | None:
    """The ``error`` of a ``WWW-Authenticate: Bearer …`` challenge (RFC 6750 §3), else None."""
    if not challenge:
        return None
    scheme, _, params = challenge.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    match = _BEARER_ERROR.search(params)
    return match.group(1) if match else None


def discovery_urls(issuer: str) -> list[str]:
    """Where to find the metadata of ``issuer``, in the order to try them.

    RFC 8414 §3 inserts the well-known segment between host and path
    (``https://h/.well-known/oauth-authorization-server/tenant``); OpenID Connect
    Discovery appends it (``https://h/tenant/.well-known/openid-configuration``).
    """
    parts = urlsplit(issuer.rstrip("/"))
    path = parts.path.rstrip("/")
    oauth = urlunsplit((parts.scheme, parts.netloc, OAUTH_WELL_KNOWN + path, "", ""))
    oidc = urlunsplit((parts.scheme, parts.netloc, path + OIDC_WELL_KNOWN, "", ""))
    return [oauth, oidc]


def same_issuer(advertised: object, target: str) -> bool:
    """RFC 8414 §3.3: the metadata's issuer must be the URL it was looked up for."""
    return isinstance(advertised, str) and advertised.rstrip("/") == target.rstrip("/")


def midpoint(sent: float, received: float) -> float:
    return (sent + received) / 2.0


def skew_from_whole_seconds(remote_seconds: float, sent: float, received: float) -> float:
    """Remote clock minus local clock, from a timestamp truncated to whole seconds.

    The remote read its clock somewhere between ``sent`` and ``received`` (local
    unix times) and dropped the fraction, so on average it was half a second
    later than it says; we compare that with the middle of the exchange. The
    error is at most half the round trip plus half a second.
    """
    return remote_seconds + 0.5 - midpoint(sent, received)


def date_header_seconds(value: str | None) -> float | None:
    """Unix seconds of an HTTP ``Date`` header (RFC 9110 IMF-fixdate), None if unusable."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.timestamp()


def jwt_parts(token: str) -> tuple[dict, dict] | None:
    """(header, claims) of a JWS compact token without verifying it; None if not a JWT."""
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    try:
        header, claims = (json.loads(_b64url(p)) for p in pieces[:2])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def numeric(value: object) -> float | None:
    """A JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def token_ttl(expires_in: object, claims: dict | None) -> float | None:
    """Lifetime the IdP granted: ``expires_in`` of the response, else ``exp − iat``."""
    ttl = numeric(expires_in)
    if ttl is not None:
        return ttl
    if claims is None:
        return None
    exp, iat = numeric(claims.get("exp")), numeric(claims.get("iat"))
    return None if exp is None or iat is None else exp - iat
