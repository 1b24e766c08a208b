"""Access-token validation as ordered checks, each failure with its ``result`` label.

RFC 8725 (JWT best practices) and RFC 9068 (JWT access tokens) say *what* to
reject; the order here decides *which label* a bad token is counted under, so
dashboards can tell an attack (``disallowed_alg``, ``bad_signature``) from an
operational problem (``unknown_kid`` after a rotation, ``expired`` under clock
skew). The checks are pure functions; ``TokenValidator`` composes them with the
two pieces of state that need I/O (the JWKS cache and the revocation list/
introspection), which are injected so the order is testable without HTTP.

Some results feed the ``token-validation-success`` SLO, so a result may only
say "our infrastructure failed" when something an anonymous caller cannot
produce vouches for the token (docs/slo-spec.md, "Who can move an SLO"):

* an unknown ``kid`` is ``unknown_kid`` only once the IdP confirms, by
  introspection, that a token with that kid is really its own (then the kid is
  remembered for a while); otherwise it is ``unknown_kid_unconfirmed``.
  Introspection calls share one rate budget, so a flood cannot amplify into
  IdP load;
* ``expired`` counts each genuine (signature-verified) token once; presenting
  the same expired token again is ``expired_replayed`` (a leaked token replayed
  forever burns nothing); ``wrong_audience`` likewise (``wrong_audience_replayed``);
* a token over the size limit is ``too_large`` (answered 431) and never parsed;
* anything the code did not foresee is ``internal_error`` or ``malformed``,
  never an HTTP 500.

Header parameters that point at keys (``jku``, ``x5u``, ``jwk``, ``x5c``) are
never read: keys come only from the configured issuer's JWKS.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, TypeGuard

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
# Results that exist so that anonymous input has a label of its own, outside the SLI.
UNKNOWN_KID_UNCONFIRMED = "unknown_kid_unconfirmed"
EXPIRED_REPLAYED = "expired_replayed"
INACTIVE = "inactive"  # opaque token the IdP does not call active (unknown, revoked, expired)
INTROSPECTION_THROTTLED = "introspection_throttled"
INTERNAL_ERROR = "internal_error"
WRONG_AUDIENCE_REPLAYED = "wrong_audience_replayed"
# A credential over the header limit: answered 431, never parsed. Anyone can send one.
TOO_LARGE = "too_large"
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
    UNKNOWN_KID_UNCONFIRMED,
    EXPIRED_REPLAYED,
    INACTIVE,
    INTROSPECTION_THROTTLED,
    INTERNAL_ERROR,
    WRONG_AUDIENCE_REPLAYED,
    TOO_LARGE,
)
# JSON numbers beyond this are no timestamps; they would overflow float arithmetic.
MAX_NUMERIC_CLAIM = 2**53

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
        # the token's client_id claim, set only once the signature verified (a vouched id)
        self.client_id: object = None


@dataclass(frozen=True)
class Outcome:
    """The verdict on one token; ``claims`` only for valid tokens.

    ``client_id`` is the token's ``client_id`` claim (RFC 9068 §2.2) when the issuer
    vouched for the token (its signature verified, or introspection called it active),
    whatever the verdict; else None: an unverified claim is anyone's to write.
    """

    result: str
    description: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict)
    client_id: object = None

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
    """A token over the limit is ``too_large`` before any parsing (the gateway answers 431)."""
    if len(token.encode("utf-8")) > max_bytes:
        raise Rejected(TOO_LARGE, f"token larger than {max_bytes} bytes")


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
    """Strict, canonical base64url without padding (RFC 7515 §2).

    The decoder ignores the unused low bits of the last character, so one token
    has up to 16 spellings (``...A`` and ``...B`` decode alike); only the
    canonical one is accepted, so a copy cannot pose as a distinct token.
    """
    if not _B64URL.match(segment) or len(segment) % 4 == 1:
        raise Rejected(MALFORMED, f"{name} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise Rejected(MALFORMED, f"{name} is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != segment:
        raise Rejected(MALFORMED, f"{name} is not canonical base64url")
    return raw


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
    except RecursionError:
        raise Rejected(MALFORMED, f"{name} is nested too deeply") from None
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
    Both ECDSA forms, low-S and high-S, are accepted: real IdPs sign either, and
    the twins of one token count as one token (``tokenslo.jws``).
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
            raise Rejected(MALFORMED, f"claim {name} is not a number in range")
    if "iat" not in claims:
        raise Rejected(MALFORMED, "claim iat missing")


def check_lifetime(claims: Mapping[str, Any], maximum: float | None) -> None:
    """A token living longer than policy allows is refused however well it is signed."""
    if maximum is not None and claims["exp"] - claims["iat"] > maximum:
        raise Rejected(MALFORMED, f"token lifetime exceeds {maximum:g} seconds")


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
        # RFC 7662 §2.2 does not say why: unknown, revoked and expired all look alike.
        raise Rejected(INACTIVE, "token is not active")
    token_type = response.get("token_type")
    if token_type is not None and str(token_type).lower() not in ("access_token", "bearer"):
        raise Rejected(MALFORMED, "token is not an access token")
    if "iss" in response and response["iss"] != issuer:
        raise Rejected(WRONG_ISSUER, "token issued by an untrusted issuer")
    check_audience(response, audience)
    check_times(response, now, leeway)


def _is_number(value: Any) -> TypeGuard[float]:
    """A JSON number usable as a timestamp: finite and small enough for float arithmetic."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):  # compare as ints: float(10**400) itself overflows
        return abs(value) <= MAX_NUMERIC_CLAIM
    return math.isfinite(value) and abs(value) <= MAX_NUMERIC_CLAIM


# ---------------------------------------------------------------- composition


class KeySource(Protocol):
    async def get(self, kid: str | None) -> Key | None: ...


class Introspector(Protocol):
    async def introspect(self, token: str) -> Mapping[str, Any]: ...


class IntrospectionThrottled(Exception):
    """The introspection budget is spent: the token is not judged, the IdP is spared."""


class TokenBucket:
    """``rate`` events per second with bursts up to ``burst``; bounds calls anyone can cause."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Recent:
    """A bounded set of keys, each remembered for ``ttl`` seconds (oldest evicted first)."""

    def __init__(
        self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ):
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        seen = self._entries.get(key)  # type: ignore[call-overload]
        if seen is None:
            return False
        if self._clock() - seen >= self.ttl:
            del self._entries[key]  # type: ignore[arg-type]
            return False
        return True

    def add(self, key: str) -> None:
        self._entries[key] = self._clock()
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


# A kid the IdP vouched for stays "ours but unpublished" this long (then it is re-confirmed).
CONFIRMED_KID_TTL = 600.0
# An expired (or wrong-audience) token counts once per this period; then it is a replay.
EXPIRED_SEEN_TTL = 24 * 3600.0
# Verdicts that count once per token, and what the same token is counted as again.
REPLAYED = {EXPIRED: EXPIRED_REPLAYED, WRONG_AUDIENCE: WRONG_AUDIENCE_REPLAYED}


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
    max_token_lifetime: float | None = None
    confirmed_kids: Recent = field(default_factory=lambda: Recent(CONFIRMED_KID_TTL, 256))
    verdicts_seen: Recent = field(default_factory=lambda: Recent(EXPIRED_SEEN_TTL))

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
            return Outcome(rejected.result, rejected.description, client_id=rejected.client_id)
        return Outcome(VALID, "", claims, client_id=claims.get("client_id"))

    async def _validate_jwt(self, token: str) -> Mapping[str, Any]:
        parsed = parse_jwt(token)
        alg = check_alg(parsed.header, self.allowed_algs)
        check_typ(parsed.header)
        check_crit(parsed.header)
        kid = header_kid(parsed.header)
        key = await self.keys.get(kid)
        if key is None:
            await self._judge_unknown_kid(token, kid)
        verify_signature(parsed, alg, key)
        claims = parsed.claims
        try:
            check_required_claims(claims)
            check_lifetime(claims, self.max_token_lifetime)
            check_issuer(claims, self.issuer)
            # Behind a verified signature and required claims: the IdP issued this token for
            # another audience (F10), something no anonymous caller can produce. Counted once
            # per token, so a token leaked from another API and replayed here burns nothing.
            self._count_once(claims["jti"], lambda: check_audience(claims, self.audience))
            self._count_once(claims["jti"], lambda: check_times(claims, self.now(), self.leeway))
            check_not_revoked(claims, self.is_revoked)
        except Rejected as rejected:
            rejected.client_id = claims.get("client_id")  # signed by our issuer's key
            raise
        return claims

    async def _judge_unknown_kid(self, token: str, kid: str | None) -> NoReturn:
        """Always raises: ``unknown_kid`` only when the IdP vouches for the token's kid.

        Anyone can write any kid into a header; only the IdP can say the token is
        its own. One confirmed token vouches for its kid for ``CONFIRMED_KID_TTL``,
        so a real unpublished rotation costs one introspection, not one per request.
        """
        if kid is not None and kid in self.confirmed_kids:
            raise Rejected(UNKNOWN_KID, "signing key not found")
        if self.introspector is not None:
            try:
                response = await self.introspector.introspect(token)
            except Exception:  # noqa: BLE001 - unreachable or throttled: nobody vouched
                response = {}
            if response.get("active") is True and response.get("iss") == self.issuer:
                if kid is not None:
                    self.confirmed_kids.add(kid)
                raise Rejected(UNKNOWN_KID, "signing key not found")
        raise Rejected(UNKNOWN_KID_UNCONFIRMED, "signing key not found")

    def _count_once(self, identity: str, check: Callable[[], None]) -> None:
        """Run a check whose verdict counts against the SLO only once per token: the
        second ``expired`` or ``wrong_audience`` verdict on one token is a replay."""
        try:
            check()
        except Rejected as rejected:
            replayed = REPLAYED.get(rejected.result)
            if replayed is None:
                raise
            key = hashlib.sha256(f"{rejected.result}:{identity}".encode()).hexdigest()
            if key in self.verdicts_seen:
                raise Rejected(replayed, rejected.description) from None
            self.verdicts_seen.add(key)
            raise

    async def _validate_opaque(self, token: str) -> Mapping[str, Any]:
        assert self.introspector is not None
        try:
            response = await self.introspector.introspect(token)
        except IntrospectionThrottled:
            raise Rejected(INTROSPECTION_THROTTLED, "token cannot be checked now") from None
        self._count_once(
            token,
            lambda: check_introspection(
                response,
                issuer=self.issuer,
                audience=self.audience,
                now=self.now(),
                leeway=self.leeway,
            ),
        )
        return response
