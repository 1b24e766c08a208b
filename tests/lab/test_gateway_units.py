"""Unit tests of the gateway's pure parts: config, check order, JWKS cache, caches."""

from __future__ import annotations

import asyncio
import math

import pytest
from gateway_fixtures import b64, forge, segment
from joserfc import jwk

from tokenslo.errors import InputError
from tokenslo.lab.gateway import validator as v
from tokenslo.lab.gateway.config import load_credentials, parse_gateway_config
from tokenslo.lab.gateway.jwks_cache import JWKSCache, parse_jwks
from tokenslo.lab.gateway.revocation import IntrospectionCache, RevocationList

ISS, AUD, NOW = "http://127.0.0.1:9400", "api://lab", 1_700_000_000.0
KEY = jwk.generate_key("EC", "P-256", auto_kid=True)


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Keys:
    def __init__(self, keys: dict):
        self.keys = keys

    async def get(self, kid):
        return self.keys.get(kid)


def claims(**overrides):
    base = {
        "iss": ISS,
        "sub": "c",
        "client_id": "c",
        "aud": AUD,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": "j1",
    }
    base.update(overrides)
    return {k: x for k, x in base.items() if x is not None}


def token(header=None, **claim_overrides) -> str:
    header = header or {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}
    return forge(header, claims(**claim_overrides), KEY, "ES256")


def validate(tok: str, revoked=(), **kw) -> str:
    validator = v.TokenValidator(
        issuer=ISS,
        audience=AUD,
        allowed_algs=("ES256",),
        leeway=60,
        max_token_bytes=4096,
        keys=Keys({KEY.kid: KEY}),
        is_revoked=lambda j: j in revoked,
        now=lambda: NOW,
        **kw,
    )
    return asyncio.run(validator.validate(tok)).result


# ---------------------------------------------------------------- order of checks


@pytest.mark.parametrize(
    ("tok", "expected"),
    [
        (lambda: token(), "valid"),
        # alg is checked before typ: a none token with wrong typ is disallowed_alg
        (lambda: forge({"alg": "none", "typ": "JWT"}, claims()), "disallowed_alg"),
        # typ before kid: wrong typ with unknown kid is malformed
        (lambda: token({"alg": "ES256", "typ": "JWT", "kid": "nope"}), "malformed"),
        # kid before signature
        # nobody vouches for an unknown kid here (no introspector)
        (
            lambda: token({"alg": "ES256", "typ": "at+jwt", "kid": "nope"}),
            "unknown_kid_unconfirmed",
        ),
        # signature before iss: a tampered token with the wrong iss is bad_signature
        (lambda: token().rsplit(".", 1)[0] + "." + b64(b"\0" * 64), "bad_signature"),
        # iss before aud
        (lambda: token(iss="x", aud="y"), "wrong_issuer"),
        # aud before time
        (lambda: token(aud="y", exp=NOW - 1000), "wrong_audience"),
        (lambda: token(exp=NOW - 61), "expired"),
        (lambda: token(exp=NOW - 59), "valid"),
        (lambda: token(nbf=NOW + 61), "not_yet_valid"),
        (lambda: token(iat=NOW + 61), "not_yet_valid"),
        (
            lambda: token(
                typ=None, header={"alg": "ES256", "typ": "application/AT+JWT", "kid": KEY.kid}
            ),
            "valid",
        ),
        # expiry before revocation
        (lambda: token(jti="gone", exp=NOW - 1000), "expired"),
        (lambda: token(jti="gone"), "revoked"),
        (lambda: token(exp=None), "malformed"),
        (lambda: token(exp=True), "malformed"),
        (lambda: token(jti=None), "malformed"),
        (lambda: token(padding="x" * 5000), "too_large"),  # the app answers 431
    ],
)
def test_check_order_labels(tok, expected) -> None:
    assert validate(tok(), revoked={"gone"}) == expected


def test_parse_jwt_rejects_duplicates_nested_and_constants() -> None:
    nested = '{"a":{"b":1,"b":2}}'
    with pytest.raises(v.Rejected) as err:
        v.parse_jwt(f"{segment({'alg': 'ES256'})}.{segment(nested)}.")
    assert err.value.result == "malformed"
    with pytest.raises(v.Rejected):
        v.parse_jwt(f"{segment({'alg': 'ES256'})}.{segment('{"exp": NaN}')}.")


@pytest.mark.parametrize("alg", ["none", "NoNe", "HS256", "hs384", "XS1", "PS256"])
def test_check_alg_refuses(alg: str) -> None:
    with pytest.raises(v.Rejected) as err:
        v.check_alg({"alg": alg}, ("ES256", "RS256"))
    assert err.value.result == "disallowed_alg"


def test_check_alg_missing_is_malformed() -> None:
    with pytest.raises(v.Rejected) as err:
        v.check_alg({}, ("ES256",))
    assert err.value.result == "malformed"


def test_signature_needs_matching_curve() -> None:
    p384 = jwk.generate_key("EC", "P-384", auto_kid=True)
    tok = forge({"alg": "ES384", "typ": "at+jwt", "kid": "k"}, claims(), p384, "ES384")
    with pytest.raises(v.Rejected) as err:  # an ES256 verifier must not accept a P-384 key
        v.verify_signature(v.parse_jwt(tok), "ES256", p384)
    assert err.value.result == "bad_signature"
    v.verify_signature(v.parse_jwt(tok), "ES384", p384)  # control: right alg passes


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ({"active": True, "token_type": "Bearer", "aud": [AUD], "iss": ISS, "exp": NOW + 9}, None),
        ({"active": False}, "inactive"),
        ({"active": False, "exp": NOW - 1}, "expired"),
        ({"active": True, "token_type": "refresh_token", "aud": AUD, "exp": NOW + 9}, "malformed"),
        ({"active": True, "aud": "api://other", "exp": NOW + 9}, "wrong_audience"),
        ({"active": True, "aud": AUD, "iss": "x", "exp": NOW + 9}, "wrong_issuer"),
        ({"active": True, "aud": AUD, "exp": NOW - 100}, "expired"),
    ],
)
def test_check_introspection(response, expected) -> None:
    try:
        v.check_introspection(response, issuer=ISS, audience=AUD, now=NOW, leeway=60)
        result = None
    except v.Rejected as rejected:
        result = rejected.result
    assert result == expected


# ---------------------------------------------------------------- JWKS cache


def test_parse_jwks_skips_unusable_keys() -> None:
    rsa = jwk.generate_key("RSA", 2048, auto_kid=True)
    dup = KEY.as_dict(private=False)
    document = {
        "keys": [
            KEY.as_dict(private=False),
            {**rsa.as_dict(private=True)},  # private members are stripped, key kept
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {**KEY.as_dict(private=False), "kid": "enc", "use": "enc"},
            {"kty": "EC", "kid": "broken", "crv": "P-256", "x": "AA", "y": "AA"},
            {**dup, "kid": "twice"},
            {**dup, "kid": "twice"},
            "not a key",
        ]
    }
    keys = parse_jwks(document)
    assert sorted(keys) == sorted([KEY.kid, rsa.kid])
    assert not keys[rsa.kid].is_private


def test_jwks_cache_cooldown_stale_if_error_and_ttl() -> None:
    clock = Clock()
    calls: list[str] = []
    outcomes: list[str] = []
    documents = [{"keys": [KEY.as_dict(private=False)]}]

    async def fetch():
        calls.append("fetch")
        if documents[0] is None:
            raise OSError("idp down")
        return documents[0]

    cache = JWKSCache(fetch, ttl=100, cooldown=10, on_refresh=outcomes.append, clock=clock)
    assert cache.age() == math.inf

    async def scenario():
        assert await cache.get(KEY.kid) is not None  # first use loads
        assert await cache.get("unknown") is None  # within cooldown: no refetch
        assert len(calls) == 1
        clock.t += 11
        assert await cache.get("unknown") is None  # cooldown over: exactly one refetch
        assert await cache.get("unknown2") is None
        assert len(calls) == 2
        documents[0] = None  # IdP down: keep serving stale keys
        clock.t += 200
        assert cache.stale()
        assert await cache.get(KEY.kid) is not None
        assert outcomes == ["success", "success", "error"]
        assert cache.age() == pytest.approx(200)  # since the last success

    asyncio.run(scenario())


def test_revocation_list_and_introspection_cache() -> None:
    clock = Clock()
    revoked = RevocationList(clock)
    assert revoked.age() == math.inf
    revoked.replace({"revoked": [{"jti": "a", "exp": 5}, {"jti": 7}], "generated_at": 1})
    assert revoked.is_revoked("a") and not revoked.is_revoked("b") and len(revoked) == 1
    with pytest.raises(ValueError):
        revoked.replace({"nope": []})
    assert revoked.is_revoked("a")  # a bad document keeps the last list

    cache = IntrospectionCache(ttl=5, max_entries=2, clock=clock)
    cache.put("t1", {"active": True})
    assert cache.get("t1") == {"active": True}
    clock.t += 5
    assert cache.get("t1") is None
    for name in ("a", "b", "c"):
        cache.put(name, {"n": name})
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == {"n": "c"}


# ---------------------------------------------------------------- config


def test_config_defaults_and_values() -> None:
    config = parse_gateway_config("issuer: http://idp:1\nleeway: 5\nallowed_algs: [RS256]\n")
    assert config.issuer == "http://idp:1" and config.leeway == 5.0
    assert config.allowed_algs == ("RS256",)
    assert config.discovery_url == "http://idp:1/.well-known/oauth-authorization-server"
    assert parse_gateway_config("").port == 9401


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("port: 9401\nallowed_algs: [ES256, HS256]\n", 2, "allowed_algs", "asymmetric"),
        ("allowed_algs: [none]\n", 1, "allowed_algs", "refused"),
        ("leeway: -1\n", 1, "leeway", ">="),
        ("host: h\nport: 'x'\n", 2, "port", "integer"),
        ("issuer: ftp://x\n", 1, "issuer", "http"),
        ("jwks_tll: 3\n", 1, "jwks_tll", "unknown"),
        ("max_token_bytes: true\n", 1, "max_token_bytes", "integer"),
    ],
)
def test_config_errors_name_line_and_field(text, line, field, words) -> None:
    with pytest.raises(InputError) as err:
        parse_gateway_config(text, "gw.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("gw.yaml", line, field)
    assert words in str(err.value)
    assert str(err.value).startswith(f"gw.yaml:{line}: {field}: ")


def test_config_invalid_yaml_has_line() -> None:
    with pytest.raises(InputError) as err:
        parse_gateway_config("port: 1\nleeway: [1,\n", "gw.yaml")
    assert err.value.line is not None and "invalid YAML" in str(err.value)


@pytest.mark.parametrize(
    "content",
    [
        "client_id: gateway\nclient_secret: s3cret\n",
        "clients:\n  gateway:\n    client_secret: s3cret\n",
        "clients:\n  - client_id: gateway\n    secret: s3cret\n",
    ],
)
def test_load_credentials_shapes(tmp_path, content) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text(content)
    creds = load_credentials(path)
    assert (creds.client_id, creds.client_secret) == ("gateway", "s3cret")
    assert "s3cret" not in repr(creds)


def test_load_credentials_missing_client(tmp_path) -> None:
    path = tmp_path / "credentials.yaml"
    path.write_text("clients:\n  prober:\n    client_secret: x\n")
    with pytest.raises(InputError, match="no credentials for client 'gateway'"):
        load_credentials(path)
