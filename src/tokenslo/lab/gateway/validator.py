"""Access-token validation as ordered checks, each failure with its ``result`` label.

RFC 8725 (JWT best practices) and RFC 9068 (JWT access tokens) say *what* to
reject; the order here decides *which label* a bad token is counted under, so
dashboards can tell an attack (``disallowed_alg``, ``bad_signature``) from an
operational problem (``unknown_kid`` after a rotation, ``expired`` under clock
skew). The checks are pure functions; ``TokenValidator`` composes them with the
two pieces of state that need I/O (the JWKS cache and the revocation list/
introspection), which are injected so the order is testable without HTTP.

Header parameters that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are
never read: keys come only from the configured issuer's JWKS.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jws import JWSRegistry

VALID = "valid"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
BAD_SIGNATURE = "bad_signature"
UNKNOWN_KID = "unknown_kid"
WRONG_AUDIENCE = "wrong_audience"
WRONG_ISSUER = "wrong_issuer"
REVOKED = "revoked"
MALFORMED = "malformed"
DISALLOWED_ALG = "disallowed_alg"
RESULTS = (
    VALID,
    EXPIRED,
    NOT_YET_VALID,
    BAD_SIGNATURE,
    UNKNOWN_KID,
    WRONG_AUDIENCE,
    WRONG_ISSUER,
    REVOKED,
    MALFORMED,
    DISALLOWED_ALG,
)

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Extensions we implement and may therefore accept in ``crit``: none.
UNDERSTOOD_CRIT: frozenset[str] = frozenset()
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
# RFC 6750 §2.1 b64token
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


class Rejected(Exception):
    """A token failed a check. ``description`` is safe to return to the client."""

    def __init__(self, result: str, description: str):
        super().__init__(description)
        self.result = result
        self.description = description


@dataclass(frozen=True)
class Outcome:
    """The verdict on one token; ``claims`` only for valid tokens."""

    result: str
    description: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.result == VALID


@dataclass(frozen=True)
class ParsedJWT:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


# ---------------------------------------------------------------- structure


def looks_like_jwt(token: str) -> bool:
    """JWS compact tokens have exactly two dots; opaque reference tokens none."""
    return token.count(".") == 2


def is_b64token(token: str) -> bool:
    return bool(_B64TOKEN.match(token))


def check_size(token: str, max_bytes: int) -> None:
    if len(token.encode("utf-8")) > max_bytes:
        raise Rejected(MALFORMED, f"token larger than {max_bytes} bytes")


def parse_jwt(token: str) -> ParsedJWT:
    """Split and decode a JWS compact token, refusing anything ambiguous."""
    parts = token.split(".")
    if len(parts) != 3:
        raise Rejected(MALFORMED, "token is not a JWS compact serialization")
    header_b64, payload_b64, signature_b64 = parts
    if not header_b64 or not payload_b64:
        raise Rejected(MALFORMED, "token has an empty segment")
    header = _json_segment(header_b64, "header")
    claims = _json_segment(payload_b64, "payload")
    signature = _b64decode(signature_b64, "signature")
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    return ParsedJWT(header, claims, signing_input, signature)


def _b64decode(segment: str, name: str) -> bytes:
    """Strict base64url without padding (RFC 7515 §2)."""
    if not _B64URL.match(segment) or len(segment) % 4 == 1:
        raise Rejected(MALFORMED, f"{name} is not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Rejected(MALFORMED, f"{name} is not base64url") from None


def _json_segment(segment: str, name: str) -> dict[str, Any]:
    raw = _b64decode(segment, name)
    try:
        value = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
        )
    except _DuplicateKey:
        raise Rejected(MALFORMED, f"{name} has duplicate members") from None
    except (UnicodeDecodeError, ValueError):
        raise Rejected(MALFORMED, f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise Rejected(MALFORMED, f"{name} is not a JSON object")
    return value


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constants(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


# ---------------------------------------------------------------- header


def check_alg(header: Mapping[str, Any], allowed: Collection[str]) -> str:
    """``none`` (any casing), HMAC and unknown algorithms are all ``disallowed_alg``."""
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise Rejected(MALFORMED, "header has no alg")
    if alg.lower() == "none" or alg.upper().startswith("HS"):
        raise Rejected(DISALLOWED_ALG, "algorithm not allowed")
    if alg not in allowed or alg not in JWSRegistry.algorithms:
        raise Rejected(DISALLOWED_ALG, "algorithm not allowed")
    return alg


def check_typ(header: Mapping[str, Any]) -> None:
    """RFC 9068 §4: only ``at+jwt`` tokens are access tokens (stops ID-token confusion)."""
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        raise Rejected(MALFORMED, "token is not an access token (typ must be at+jwt)")


def check_crit(header: Mapping[str, Any]) -> None:
    """RFC 7515 §4.1.11: an extension we do not understand makes the token invalid."""
    if "crit" not in header:
        return
    crit = header["crit"]
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise Rejected(MALFORMED, "crit must be a non-empty list of names")
    if any(name not in UNDERSTOOD_CRIT for name in crit):
        raise Rejected(MALFORMED, "unsupported critical header extension")


def header_kid(header: Mapping[str, Any]) -> str | None:
    kid = header.get("kid")
    if kid is None:
        return None
    if not isinstance(kid, str) or not kid:
        raise Rejected(MALFORMED, "kid must be a non-empty string")
    return kid


# ---------------------------------------------------------------- signature


def verify_signature(parsed: ParsedJWT, alg: str, key: Key) -> None:
    """Verify with the algorithm the header names, after checking the key fits it.

    ``check_key`` refuses a key whose kty (and, for EC, crv) does not match the
    algorithm, so an RSA key can never be fed to HMAC or an ES384 key to ES256.
    """
    model = JWSRegistry.algorithms[alg]
    try:
        model.check_key(key)
        ok = model.verify(parsed.signing_input, parsed.signature, key)
    except (JoseError, ValueError, TypeError):
        ok = False
    if not ok:
        raise Rejected(BAD_SIGNATURE, "signature verification failed")


# ---------------------------------------------------------------- claims


def check_required_claims(claims: Mapping[str, Any]) -> None:
    """RFC 9068 §2.2 claims must be present with the right JSON types."""
    for name in ("iss", "sub", "client_id", "jti"):
        if not isinstance(claims.get(name), str):
            raise Rejected(MALFORMED, f"claim {name} missing or not a string")
    aud = claims.get("aud")
    if not (isinstance(aud, str) or (isinstance(aud, list) and aud)):
        raise Rejected(MALFORMED, "claim aud missing or invalid")
    if "exp" not in claims:
        raise Rejected(MALFORMED, "claim exp missing")
    for name in ("exp", "iat", "nbf"):
        if name in claims and not _is_number(claims[name]):
            raise Rejected(MALFORMED, f"claim {name} is not a number")
    if "iat" not in claims:
        raise Rejected(MALFORMED, "claim iat missing")


def check_issuer(claims: Mapping[str, Any], issuer: str) -> None:
    if claims.get("iss") != issuer:
        raise Rejected(WRONG_ISSUER, "token issued by an untrusted issuer")


def check_audience(claims: Mapping[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audience not in audiences:
        raise Rejected(WRONG_AUDIENCE, "token not issued for this audience")


def check_times(claims: Mapping[str, Any], now: float, leeway: float) -> None:
    """exp/nbf/iat with leeway (RFC 7519 §4.1.4-6); iat in the future is skew, not validity."""
    exp = claims.get("exp")
    if _is_number(exp) and now >= exp + leeway:
        raise Rejected(EXPIRED, "token expired")
    nbf = claims.get("nbf")
    if _is_number(nbf) and now + leeway < nbf:
        raise Rejected(NOT_YET_VALID, "token not yet valid")
    iat = claims.get("iat")
    if _is_number(iat) and iat > now + leeway:
        raise Rejected(NOT_YET_VALID, "token issued in the future")


def check_not_revoked(claims: Mapping[str, Any], revoked: Callable[[str], bool]) -> None:
    jti = claims.get("jti")
    if isinstance(jti, str) and revoked(jti):
        raise Rejected(REVOKED, "token revoked")


def check_introspection(
    response: Mapping[str, Any], *, issuer: str, audience: str, now: float, leeway: float
) -> None:
    """RFC 7662 response of an opaque token, held to the same rules as a JWT."""
    if response.get("active") is not True:
        exp = response.get("exp")
        if _is_number(exp) and now >= exp:
            raise Rejected(EXPIRED, "token expired")
        raise Rejected(REVOKED, "token is not active")
    token_type = response.get("token_type")
    if token_type is not None and str(token_type).lower() not in ("access_token", "bearer"):
        raise Rejected(MALFORMED, "token is not an access token")
    if "iss" in response and response["iss"] != issuer:
        raise Rejected(WRONG_ISSUER, "token issued by an untrusted issuer")
    check_audience(response, audience)
    check_times(response, now, leeway)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------- composition


class KeySource(Protocol):
    async def get(self, kid: str | None) -> Key | None: ...


class Introspector(Protocol):
    async def introspect(self, token: str) -> Mapping[str, Any]: ...


@dataclass
class TokenValidator:
    """Runs the checks in the documented order; returns an ``Outcome``, never raises ``Rejected``.

    ``introspector`` may raise (IdP unreachable): that is not a verdict on the
    token, so it propagates for the caller to answer 503.
    """

    issuer: str
    audience: str
    allowed_algs: Collection[str]
    leeway: float
    max_token_bytes: int
    keys: KeySource
    is_revoked: Callable[[str], bool]
    now: Callable[[], float]
    introspector: Introspector | None = None

    async def validate(self, token: str) -> Outcome:
        try:
            check_size(token, self.max_token_bytes)
            if looks_like_jwt(token):
                claims = await self._validate_jwt(token)
            elif "." not in token and self.introspector is not None:
                claims = await self._validate_opaque(token)
            else:
                raise Rejected(MALFORMED, "token is not a JWS compact serialization")
        except Rejected as rejected:
            return Outcome(rejected.result, rejected.description)
        return Outcome(VALID, "", claims)

    async def _validate_jwt(self, token: str) -> Mapping[str, Any]:
        parsed = parse_jwt(token)
        alg = check_alg(parsed.header, self.allowed_algs)
        check_typ(parsed.header)
        check_crit(parsed.header)
        kid = header_kid(parsed.header)
        key = await self.keys.get(kid)
        if key is None:
            raise Rejected(UNKNOWN_KID, "signing key not found")
        verify_signature(parsed, alg, key)
        claims = parsed.claims
        check_required_claims(claims)
        check_issuer(claims, self.issuer)
        check_audience(claims, self.audience)
        check_times(claims, self.now(), self.leeway)
        check_not_revoked(claims, self.is_revoked)
        return claims

    async def _validate_opaque(self, token: str) -> Mapping[str, Any]:
        assert self.introspector is not None
        response = await self.introspector.introspect(token)
        check_introspection(
            response,
            issuer=self.issuer,
            audience=self.audience,
            now=self.now(),
            leeway=self.leeway,
        )
        return response
