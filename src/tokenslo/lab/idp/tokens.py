"""Token minting, refresh-token families, introspection and revocation.

Access tokens are RFC 9068 JWTs (or, per client, random opaque reference tokens).
Refresh tokens are opaque and rotate on every use; all tokens descending from one
client_credentials grant form a *family*. Presenting an already-rotated refresh token
is treated as theft (OAuth 2.0 Security BCP, RFC 9700 §4.14.2): the whole family is
revoked, including its access tokens, whose jtis then appear in the revocation list
the gateway polls.

Pure in-memory state behind one lock; time comes from the injected ``now`` (the fault
engine's clock, so clock-skew faults move iat/exp).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tokenslo.lab.idp.clients import Client
from tokenslo.lab.idp.keys import KeyStore

log = logging.getLogger("tokenslo.lab.idp")

SWEEP_INTERVAL = 30.0  # seconds between prunes of expired state


def token_ref(token: str) -> str:
    """How logs name a token: never the value, only a short SHA-256 prefix."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response: ``error`` code, description and HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str
    jti: str
    token_format: str
    refresh_token: str | None = None


@dataclass
class _Opaque:
    jti: str
    client_id: str
    scope: str
    aud: str | list[str]
    iat: int
    exp: int
    family_id: str | None
    revoked: bool = False


@dataclass
class _Refresh:
    family_id: str
    client_id: str
    scope: str
    audience: str | None
    exp: int
    used: bool = False


@dataclass
class _Family:
    client_id: str
    revoked: bool = False
    # (jti, exp, digest of the token if opaque) of every access token in the family
    access: list[tuple[str, int, str | None]] = field(default_factory=list)
    refresh: list[str] = field(default_factory=list)  # digests


class RevocationList:
    """Revoked access-token jtis with their exp, so entries can be dropped once expired."""

    def __init__(self) -> None:
        self._entries: dict[str, int] = {}

    def add(self, jti: str, exp: int) -> None:
        self._entries[jti] = exp

    def __contains__(self, jti: object) -> bool:
        return jti in self._entries

    def snapshot(self, now: float) -> list[dict]:
        return [{"jti": j, "exp": e} for j, e in self._entries.items() if e > now]

    def prune(self, now: float) -> None:
        self._entries = {j: e for j, e in self._entries.items() if e > now}


def grant_scope(requested: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """RFC 6749 §3.3: no scope → everything allowed; any scope outside it → invalid_scope."""
    if not requested or not requested.strip():
        return allowed
    wanted = tuple(dict.fromkeys(requested.split()))
    extra = [s for s in wanted if s not in allowed]
    if extra:
        raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(extra)}")
    return wanted


def pick_audience(requested: str | None, client: Client) -> str | list[str]:
    """The aud claim: the requested audience (RFC 8707 style) or all the client's audiences."""
    if not client.audiences:
        raise OAuthError("invalid_target", "no audience is configured for this client")
    if requested:
        if requested not in client.audiences:
            raise OAuthError("invalid_target", "audience not allowed for this client")
        return requested
    return client.audiences[0] if len(client.audiences) == 1 else list(client.audiences)


class TokenService:
    def __init__(self, issuer: str, keys: KeyStore, now: Callable[[], float] = time.time):
        self.issuer = issuer
        self.keys = keys
        self.now = now
        self.revoked = RevocationList()
        self._lock = threading.Lock()
        self._opaque: dict[str, _Opaque] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._families: dict[str, _Family] = {}
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL

    # -- grants -------------------------------------------------------------------------

    def client_credentials(
        self, client: Client, scope: str | None = None, audience: str | None = None
    ) -> Issued:
        self._maybe_sweep()
        scopes = " ".join(grant_scope(scope, client.scopes))
        aud = pick_audience(audience, client)
        family_id = secrets.token_hex(8) if "refresh_token" in client.grant_types else None
        with self._lock:
            if family_id:
                self._families[family_id] = _Family(client_id=client.client_id)
            return self._issue(client, scopes, aud, audience, family_id)

    def refresh(self, client: Client, refresh_token: str, scope: str | None = None) -> Issued:
        """Rotate a refresh token; reusing a rotated one revokes its whole family."""
        self._maybe_sweep()
        digest = _digest(refresh_token)
        with self._lock:
            record = self._refresh.get(digest)
            if record is None or record.client_id != client.client_id:
                raise OAuthError("invalid_grant", "refresh token is invalid")
            family = self._families.get(record.family_id)
            if family is None or family.revoked:
                raise OAuthError("invalid_grant", "refresh token was revoked")
            if record.used:
                self._revoke_family(record.family_id, family)
                log.warning(
                    "refresh token reuse detected: token=%s client=%s family=%s revoked",
                    token_ref(refresh_token),
                    client.client_id,
                    record.family_id,
                )
                raise OAuthError("invalid_grant", "refresh token was already used")
            if record.exp <= self.now():
                raise OAuthError("invalid_grant", "refresh token expired")
            scopes = " ".join(grant_scope(scope, tuple(record.scope.split())))
            aud = pick_audience(record.audience, client)
            record.used = True
            return self._issue(client, scopes, aud, record.audience, record.family_id)

    def _issue(
        self,
        client: Client,
        scope: str,
        aud: str | list[str],
        audience: str | None,
        family_id: str | None,
    ) -> Issued:
        """Mint one access token (and a refresh token in a family); caller holds the lock."""
        iat = int(self.now())
        exp = iat + client.token_ttl
        jti = secrets.token_urlsafe(16)
        opaque_digest = None
        if client.token_format == "opaque":
            token = secrets.token_urlsafe(32)
            opaque_digest = _digest(token)
            self._opaque[opaque_digest] = _Opaque(
                jti, client.client_id, scope, aud, iat, exp, family_id
            )
        else:
            claims = {
                "iss": self.issuer,
                "sub": client.client_id,
                "aud": aud,
                "exp": exp,
                "iat": iat,
                "nbf": iat,
                "jti": jti,
                "scope": scope,
                "client_id": client.client_id,
            }
            token = self.keys.sign({"typ": "at+jwt"}, claims)
        refresh = None
        if family_id is not None:
            family = self._families[family_id]
            family.access.append((jti, exp, opaque_digest))
            refresh = secrets.token_urlsafe(32)
            digest = _digest(refresh)
            family.refresh.append(digest)
            self._refresh[digest] = _Refresh(
                family_id, client.client_id, scope, audience, iat + client.refresh_ttl
            )
        return Issued(token, client.token_ttl, scope, jti, client.token_format, refresh)

    def _revoke_family(self, family_id: str, family: _Family) -> None:
        family.revoked = True
        for jti, exp, opaque_digest in family.access:
            self.revoked.add(jti, exp)
            if opaque_digest and opaque_digest in self._opaque:
                self._opaque[opaque_digest].revoked = True
        for digest in family.refresh:
            self._refresh.pop(digest, None)

    # -- introspection and revocation -----------------------------------------------------

    def introspect(self, token: str) -> dict:
        """RFC 7662 response for any token this IdP issued; ``{"active": false}`` otherwise."""
        now = self.now()
        digest = _digest(token)
        with self._lock:
            opaque = self._opaque.get(digest)
            if opaque is not None:
                if opaque.revoked or opaque.exp <= now or opaque.jti in self.revoked:
                    return {"active": False}
                return {
                    "active": True,
                    "token_type": "Bearer",
                    "scope": opaque.scope,
                    "client_id": opaque.client_id,
                    "sub": opaque.client_id,
                    "aud": opaque.aud,
                    "iss": self.issuer,
                    "iat": opaque.iat,
                    "exp": opaque.exp,
                    "jti": opaque.jti,
                }
            refresh = self._refresh.get(digest)
            if refresh is not None:
                if refresh.used or refresh.exp <= now:
                    return {"active": False}
                return {
                    "active": True,
                    "token_type": "refresh_token",
                    "scope": refresh.scope,
                    "client_id": refresh.client_id,
                    "exp": refresh.exp,
                }
        return self._introspect_jwt(token, now)

    def _introspect_jwt(self, token: str, now: float) -> dict:
        decoded = self.keys.verify(token)
        if decoded is None or decoded.header.get("typ") != "at+jwt":
            return {"active": False}
        claims = decoded.claims
        if (
            claims.get("iss") != self.issuer
            or not isinstance(claims.get("exp"), int)
            or claims["exp"] <= now
            or claims.get("nbf", 0) > now
            or claims.get("jti") in self.revoked
        ):
            return {"active": False}
        return {"active": True, "token_type": "Bearer", **claims}

    def revoke(self, client: Client, token: str) -> str:
        """RFC 7009: revoke a token of ``client``; unknown tokens are fine (returns "unknown").

        Raises ``OAuthError`` when the token belongs to another client (§2.1: refused).
        """
        digest = _digest(token)
        with self._lock:
            refresh = self._refresh.get(digest)
            if refresh is not None:
                self._check_owner(client, refresh.client_id)
                family = self._families.get(refresh.family_id)
                if family is not None:
                    # §2.1: revoking a refresh token also invalidates its access tokens.
                    self._revoke_family(refresh.family_id, family)
                return "refresh_token"
            opaque = self._opaque.get(digest)
            if opaque is not None:
                self._check_owner(client, opaque.client_id)
                opaque.revoked = True
                self.revoked.add(opaque.jti, opaque.exp)
                return "access_token"
        decoded = self.keys.verify(token)
        if decoded is None or not isinstance(decoded.claims.get("jti"), str):
            return "unknown"
        self._check_owner(client, decoded.claims.get("client_id"))
        with self._lock:
            self.revoked.add(decoded.claims["jti"], int(decoded.claims.get("exp", 0)))
        return "access_token"

    @staticmethod
    def _check_owner(client: Client, owner: object) -> None:
        if owner != client.client_id:
            raise OAuthError("unauthorized_client", "the token was not issued to this client")

    def revocation_list(self) -> dict:
        now = self.now()
        with self._lock:
            revoked = self.revoked.snapshot(now)
        return {"revoked": revoked, "generated_at": int(now)}

    # -- housekeeping ----------------------------------------------------------------------

    def _maybe_sweep(self) -> None:
        if time.monotonic() >= self._next_sweep:
            self.sweep()

    def sweep(self) -> None:
        """Drop expired state so memory stays bounded under sustained load."""
        now = self.now()
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        with self._lock:
            self._opaque = {d: r for d, r in self._opaque.items() if r.exp > now}
            self._refresh = {d: r for d, r in self._refresh.items() if r.exp > now}
            self.revoked.prune(now)
            live = {r.family_id for r in self._refresh.values()}
            for family_id, family in list(self._families.items()):
                family.access = [a for a in family.access if a[1] > now]
                family.refresh = [d for d in family.refresh if d in self._refresh]
                if family_id not in live and not family.access:
                    del self._families[family_id]

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "opaque_tokens": len(self._opaque),
                "refresh_tokens": len(self._refresh),
                "families": len(self._families),
                "revoked_jtis": len(self.revoked.snapshot(self.now())),
            }
