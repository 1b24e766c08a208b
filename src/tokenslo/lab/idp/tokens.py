"""Token minting, refresh-token families, introspection and revocation.

Access tokens are RFC 9068 JWTs (or, per client, random opaque reference tokens).
Refresh tokens are opaque and rotate on every use; all tokens descending from one
client_credentials grant form a *family*. Presenting an already-rotated refresh token
is treated as theft (OAuth 2.0 Security BCP, RFC 9700 §4.14.2): the whole family is
revoked, including its access tokens, whose jtis then appear in the revocation list
the gateway polls.

Memory is the constraint under sustained issuance: every refresh token must be
remembered until it expires (``refresh_ttl``, an hour in the lab), used or not, or
reuse could not be detected. So the per-token state is kept small and bounded:

* tokens are stored by their SHA-256 digest as ``bytes`` (never the token itself);
* records are ``__slots__`` objects; a refresh record points at its ``_Family`` (no
  family-id strings, no family index: a family lives exactly as long as a record
  references it);
* a family remembers its access tokens' jtis only until those tokens expire — after
  that, revoking them is moot — and they are pruned on every sweep;
* a revoked family's records are dropped at the next sweep (lookups already see the
  revoked flag), so it does not wait out ``refresh_ttl``;
* the sweep runs on requests and from the IdP's housekeeping thread.

Pure in-memory state behind one lock; time comes from the injected ``now`` (the fault
engine's clock, so clock-skew faults move iat/exp).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenslo.errors import InputError
from tokenslo.files import write_atomically
from tokenslo.jws import token_fingerprint
from tokenslo.lab.idp.clients import Client
from tokenslo.lab.idp.keys import KeyStore
from tokenslo.lab.idp.profiles import BLOAT_CLAIM, TokenProfile
from tokenslo.lab.logsafe import clean

log = logging.getLogger("tokenslo.lab.idp")

SWEEP_INTERVAL = 10.0  # seconds between prunes of expired state


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response: ``error`` code, description and HTTP status.

    ``escalation`` marks a refusal that was a privilege-escalation attempt (one of
    ``ESCALATION_KINDS``): it only feeds a metric and never changes the response.
    """

    def __init__(
        self, error: str, description: str, status: int = 400, escalation: str | None = None
    ):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.escalation = escalation


# Privilege-escalation attempts (lab metric idp_privilege_escalation_attempts_total{kind}).
SCOPE_NOT_REGISTERED = "scope_not_registered"  # a scope the client was never registered for
SCOPE_WIDENING = "scope_widening_on_refresh"  # a refresh asking for more than its grant
ESCALATION_KINDS = (SCOPE_NOT_REGISTERED, SCOPE_WIDENING)


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str
    jti: str
    token_format: str
    refresh_token: str | None = None


class _Opaque:
    __slots__ = ("jti", "client_id", "scope", "aud", "iat", "exp", "revoked")

    def __init__(self, jti: str, client_id: str, scope: str, aud, iat: int, exp: int):
        self.jti, self.client_id, self.scope, self.aud = jti, client_id, scope, aud
        self.iat, self.exp, self.revoked = iat, exp, False


class _Family:
    """Tokens descending from one grant. ``access`` is flat ``[jti, exp, jti, exp, …]``
    (no tuple per token) of the access tokens not yet expired, or None."""

    __slots__ = ("client_id", "audience", "revoked", "access")

    def __init__(self, client_id: str, audience: str | None):
        self.client_id, self.audience = client_id, audience
        self.revoked = False
        self.access: list | None = None

    def add_access(self, jti: str, exp: int, now: float) -> None:
        self.prune(now)
        if self.access is None:
            self.access = [jti, exp]
        else:
            self.access += (jti, exp)

    def live_access(self, now: float) -> list[tuple[str, int]]:
        pairs = self.access or []
        return [(pairs[i], pairs[i + 1]) for i in range(0, len(pairs), 2) if pairs[i + 1] > now]

    def prune(self, now: float) -> None:
        """Forget expired access tokens: a revocation could no longer matter for them."""
        if self.access is not None:
            live = self.live_access(now)
            self.access = [x for pair in live for x in pair] or None


class _Refresh:
    __slots__ = ("family", "scope", "exp", "used")

    def __init__(self, family: _Family, scope: str, exp: int):
        self.family, self.scope, self.exp, self.used = family, scope, exp, False


class RevocationList:
    """Revoked access-token jtis with their exp, so entries can be dropped once expired.

    With a ``path`` the list survives restarts: a revoked JWT stays valid by its
    signature until ``exp``, so forgetting the revocation (any IdP restart, also
    the one ``lab up`` does when it recovers a lab) would make it valid again.
    The file is a journal (one JSON object per line, mode 0600): each revocation
    appends its line, so a revocation costs the same however many are listed —
    rewriting the whole list on every one made revocation, under the token lock,
    slow down everything else in a long load test. It is compacted (atomically
    rewritten with the live entries) on load and when dead lines outnumber live
    ones. Appends are flushed to the kernel, which is what an IdP restart needs.
    Callers hold the token service's lock.
    """

    def __init__(self, path: Path | None = None, now: float | None = None) -> None:
        self._entries: dict[str, int] = {}
        self._pending: list[tuple[str, int]] = []
        self._path = path
        self._lines = 0
        if path is not None:
            now = time.time() if now is None else now
            self._entries = load_revocations(path, now)
            self._compact(now)

    def add(self, jti: str, exp: int) -> None:
        self._entries[jti] = exp
        self._pending.append((jti, exp))

    def __contains__(self, jti: object) -> bool:
        return jti in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def snapshot(self, now: float) -> list[dict]:
        return [{"jti": j, "exp": e} for j, e in self._entries.items() if e > now]

    def prune(self, now: float) -> None:
        for jti in [j for j, e in self._entries.items() if e <= now]:
            del self._entries[jti]

    def save(self, now: float) -> None:
        """Append what was added since the last save (no-op without a path)."""
        if self._path is None or not self._pending:
            return
        lines = "".join(json.dumps({"jti": j, "exp": e}) + "\n" for j, e in self._pending)
        self._pending.clear()
        with open(self._path, "a", encoding="utf-8") as journal:
            journal.write(lines)
        self._lines += lines.count("\n")
        self.prune(now)
        if self._lines > 2 * len(self._entries) + COMPACT_SLACK:
            self._compact(now)

    def _compact(self, now: float) -> None:
        assert self._path is not None
        self.prune(now)
        live = self.snapshot(now)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        entries = "".join(json.dumps(entry) + "\n" for entry in live)
        write_atomically(self._path, entries, mode=0o600)  # holds token ids: owner only
        self._lines = len(live)


COMPACT_SLACK = 1000  # dead journal lines tolerated before a rewrite


def load_revocations(path: Path, now: float) -> dict[str, int]:
    """The live entries of a revocations journal; a missing file is an empty list, and a
    last line cut short (a crash mid-append) is ignored. The earlier one-document form
    (``{"revoked": [...]}``) is read too; compaction rewrites it as a journal."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _damaged(path, exc) from None
    if len(lines) == 1 and lines[0].lstrip().startswith('{"revoked"'):
        try:
            lines = [json.dumps(old) for old in json.loads(lines[0])["revoked"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise _damaged(path, exc, 1) from None
    entries: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
            jti, exp = item["jti"], int(item["exp"])
            if not isinstance(jti, str):
                raise TypeError("jti")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if number == len(lines) and not line.rstrip().endswith("}"):
                break  # cut short by a crash while appending
            raise _damaged(path, exc, number) from None
        if exp > now:
            entries[jti] = exp
    return entries


def _damaged(path: Path, exc: Exception, line: int | None = None) -> InputError:
    return InputError(
        f"cannot load revocations ({type(exc).__name__}); each line must be "
        '{"jti": ..., "exp": ...}',
        file=str(path),
        line=line,
        field="revocations_file",
    )


def grant_scope(
    requested: str | None, allowed: tuple[str, ...], registered: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """RFC 6749 §3.3: no scope → everything allowed; any scope outside it → invalid_scope.

    ``allowed`` is the client's registration for a new grant, or (with ``registered``,
    the registration) the original grant's scope on a refresh; the refusal says which
    kind of escalation attempt it was (``escalation_kind``).
    """
    if not requested or not requested.strip():
        return allowed
    wanted = tuple(dict.fromkeys(requested.split()))
    extra = [s for s in wanted if s not in allowed]
    if extra:
        raise OAuthError(
            "invalid_scope",
            f"scope not allowed for this client: {' '.join(extra)}",
            escalation=escalation_kind(extra, registered),
        )
    return wanted


def escalation_kind(extra: list[str], registered: tuple[str, ...] | None) -> str:
    """One refused request is one attempt of the most telling kind: a scope outside the
    registration (``registered`` None: the refusal was already against it) is
    ``scope_not_registered``, even on a refresh; a registered scope the refreshed
    grant no longer holds is ``scope_widening_on_refresh``."""
    if registered is None or any(scope not in registered for scope in extra):
        return SCOPE_NOT_REGISTERED
    return SCOPE_WIDENING


def pick_audience(requested: str | None, client: Client) -> str | list[str]:
    """The aud claim: the requested audience (RFC 8707 style) or all the client's audiences."""
    if not client.audiences:
        raise OAuthError("invalid_target", "no audience is configured for this client")
    if requested:
        if requested not in client.audiences:
            raise OAuthError("invalid_target", "audience not allowed for this client")
        return client.audiences[client.audiences.index(requested)]  # shared, not per request
    return client.audiences[0] if len(client.audiences) == 1 else list(client.audiences)


class TokenService:
    def __init__(
        self,
        issuer: str,
        keys: KeyStore,
        now: Callable[[], float] = time.time,
        revocations_file: Path | None = None,
        profile: Callable[[str], TokenProfile | None] = lambda _client_id: None,
    ):
        self.issuer = issuer
        self.keys = keys
        self.now = now
        self.profile = profile  # the lab's token-profile fault for a client, if any
        self.revoked = RevocationList(revocations_file, now())
        self._lock = threading.Lock()
        self._opaque: dict[bytes, _Opaque] = {}
        self._refresh: dict[bytes, _Refresh] = {}
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL

    # -- grants -------------------------------------------------------------------------

    def client_credentials(
        self, client: Client, scope: str | None = None, audience: str | None = None
    ) -> Issued:
        self._maybe_sweep()
        scopes = sys.intern(" ".join(grant_scope(scope, client.scopes)))
        aud = pick_audience(audience, client)
        family = None
        if "refresh_token" in client.grant_types:
            family = _Family(client.client_id, aud if isinstance(aud, str) and audience else None)
        with self._lock:
            return self._issue(client, scopes, aud, family)

    def refresh(self, client: Client, refresh_token: str, scope: str | None = None) -> Issued:
        """Rotate a refresh token; reusing a rotated one revokes its whole family."""
        self._maybe_sweep()
        with self._lock:
            record = self._refresh.get(_digest(refresh_token))
            if record is None or record.family.client_id != client.client_id:
                raise OAuthError("invalid_grant", "refresh token is invalid")
            family = record.family
            if family.revoked:
                raise OAuthError("invalid_grant", "refresh token was revoked")
            if record.used:
                count = self._revoke_family(family)
                log.warning(
                    "refresh token reuse detected: token=%s client=%s; family revoked "
                    "(%d live access tokens)",
                    token_fingerprint(refresh_token),
                    clean(client.client_id),
                    count,
                )
                raise OAuthError("invalid_grant", "refresh token was already used")
            if record.exp <= self.now():
                raise OAuthError("invalid_grant", "refresh token expired")
            granted = tuple(record.scope.split())
            scopes = sys.intern(" ".join(grant_scope(scope, granted, client.scopes)))
            aud = pick_audience(family.audience, client)
            record.used = True
            return self._issue(client, scopes, aud, family)

    def _issue(
        self, client: Client, scope: str, aud: str | list[str], family: _Family | None
    ) -> Issued:
        """Mint one access token (and a refresh token in a family); caller holds the lock.

        An active token profile (a lab fault) changes scope, audience or size here, after
        every check on the request: the IdP itself issues the bad token."""
        profile = self.profile(client.client_id)
        if profile is not None:
            scope = sys.intern(profile.scope) if profile.scope is not None else scope
            aud = profile.audience if profile.audience is not None else aud
        now = self.now()
        iat = int(now)
        exp = iat + client.token_ttl
        jti = secrets.token_urlsafe(16)
        if client.token_format == "opaque":
            token = secrets.token_urlsafe(32)
            self._opaque[_digest(token)] = _Opaque(jti, client.client_id, scope, aud, iat, exp)
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
            if profile is not None and profile.groups:
                claims[BLOAT_CLAIM] = list(profile.groups)
            token = self.keys.sign({"typ": "at+jwt"}, claims)
        refresh = None
        if family is not None:
            family.add_access(jti, exp, now)
            refresh = secrets.token_urlsafe(32)
            self._refresh[_digest(refresh)] = _Refresh(family, scope, iat + client.refresh_ttl)
        return Issued(token, client.token_ttl, scope, jti, client.token_format, refresh)

    def _revoke_family(self, family: _Family) -> int:
        """Revoke every live access token of the family; its refresh records are dead now
        (``revoked``) and dropped at the next sweep. Returns how many jtis were listed."""
        family.revoked = True
        live = family.live_access(self.now())
        for jti, exp in live:
            self.revoked.add(jti, exp)  # opaque tokens check the list too
        family.access = None
        self.revoked.save(self.now())
        return len(live)

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
                if refresh.used or refresh.family.revoked or refresh.exp <= now:
                    return {"active": False}
                return {
                    "active": True,
                    "token_type": "refresh_token",
                    "scope": refresh.scope,
                    "client_id": refresh.family.client_id,
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
                self._check_owner(client, refresh.family.client_id)
                # §2.1: revoking a refresh token also invalidates its access tokens.
                self._revoke_family(refresh.family)
                return "refresh_token"
            opaque = self._opaque.get(digest)
            if opaque is not None:
                self._check_owner(client, opaque.client_id)
                opaque.revoked = True
                self.revoked.add(opaque.jti, opaque.exp)
                self.revoked.save(self.now())
                return "access_token"
        decoded = self.keys.verify(token)
        if decoded is None or not isinstance(decoded.claims.get("jti"), str):
            return "unknown"
        self._check_owner(client, decoded.claims.get("client_id"))
        with self._lock:
            self.revoked.add(decoded.claims["jti"], int(decoded.claims.get("exp", 0)))
            self.revoked.save(self.now())
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
        """Drop expired state and revoked families so memory stays bounded under load.

        Deletes in place (a rebuilt dict would briefly double the peak), then compacts
        a table that lost most of its entries: a dict never shrinks by itself, so after
        a burst it would keep the burst's size.
        """
        now = self.now()
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL
        with self._lock:
            expired = [d for d, r in self._opaque.items() if r.exp <= now]
            for digest in expired:
                del self._opaque[digest]
            if len(expired) > len(self._opaque):
                self._opaque = dict(self._opaque)
            dead = []
            for digest, record in self._refresh.items():
                family = record.family
                if record.exp <= now or family.revoked:
                    dead.append(digest)
                elif family.access is not None and family.access[1] <= now:
                    family.prune(now)  # its oldest access token expired
            for digest in dead:
                del self._refresh[digest]
            if len(dead) > len(self._refresh):
                self._refresh = dict(self._refresh)
            self.revoked.prune(now)

    def stats(self) -> dict[str, int]:
        now = self.now()
        with self._lock:
            return {
                "opaque_tokens": len(self._opaque),
                "refresh_tokens": len(self._refresh),
                "families": len({id(r.family) for r in self._refresh.values()}),
                "revoked_jtis": len(self.revoked.snapshot(now)),
            }
