"""Hostile input at the gateway: no 500, no traceback, and no label that an anonymous caller
can move into the token-validation SLI (issue 11, items 1, 2 and 12).

The unit half drives ``TokenValidator`` directly; the HTTP half sends the
reproducers of the issue to a real gateway trusting a real IdP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator

import pytest
from gateway_fixtures import (
    Lab,
    b64,
    claims_for,
    forge,
    metric,
    result_of,
    segment,
    threaded_lab,
    validations,
)
from joserfc import jwk
from joserfc.jws import JWSRegistry
from test_gateway_units import AUD, ISS, KEY, NOW, Keys, claims

from tokenslo.jws import CURVE_ORDERS, is_high_s, token_fingerprint
from tokenslo.lab.gateway import validator as v
from tokenslo.lab.gateway.idp_client import CachedIntrospector
from tokenslo.lab.gateway.revocation import IntrospectionCache

DEPTH = 2_500  # the issue's reproducer: about 7 KB once base64url-encoded


def nested(depth: int = DEPTH) -> bytes:
    """``{"a":[[…]]}``: a JSON object nested ``depth`` levels deep (2 bytes a level)."""
    return ('{"a":' + "[" * depth + "]" * depth + "}").encode()


FORGED_UNKNOWN_KID = ".".join(
    [segment({"typ": "at+jwt", "alg": "ES256", "kid": "no-such-kid"}), "e30", b64(b"\0" * 64)]
)


def high_s_twin(token: str, alg: str = "ES256") -> str:
    """The same token with (r, n - s): its ECDSA twin, which verifies just as well."""
    head, payload, sig_b64 = token.split(".")
    signature = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
    half = len(signature) // 2
    s = int.from_bytes(signature[half:], "big")
    twin = signature[:half] + (CURVE_ORDERS[alg] - s).to_bytes(half, "big")
    return f"{head}.{payload}.{b64(twin)}"


class IdPAnswers:
    """An introspection endpoint's answers by token, and how often it was asked."""

    def __init__(self, answers: dict[str, dict] | None = None, fail: bool = False):
        self.answers = answers or {}
        self.fail = fail
        self.calls = 0

    async def introspect(self, token: str) -> dict:
        self.calls += 1
        if self.fail:
            raise ConnectionError("IdP unreachable")
        return self.answers.get(token, {"active": False})


def token(header=None, key=KEY, **claim_overrides) -> str:
    header = header or {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    return forge(header, claims(**claim_overrides), key, "ES256")


def validator(**kw) -> v.TokenValidator:
    settings = {
        "issuer": ISS,
        "audience": AUD,
        "allowed_algs": ("ES256",),
        "leeway": 60,
        "max_token_bytes": 16_384,
        "keys": Keys({KEY.kid: KEY}),
        "is_revoked": lambda _j: False,
        "now": lambda: NOW,
    }
    settings.update(kw)
    return v.TokenValidator(**settings)


def result(tok: str, checker: v.TokenValidator | None = None) -> str:
    return asyncio.run((checker or validator()).validate(tok)).result


# ---------------------------------------------------------------- item 2: never a 500


@pytest.mark.parametrize("where", ["header", "payload"])
def test_deeply_nested_segment_is_malformed(where: str) -> None:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}
    parts = (nested(), claims()) if where == "header" else (header, nested())
    assert result(forge(*parts, KEY, "ES256")) == "malformed"


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_huge_numeric_claims_in_a_validly_signed_token_are_malformed(claim: str) -> None:
    assert result(token(**{claim: 10**400})) == "malformed"
    assert result(token(**{claim: -(10**400)})) == "malformed"


def test_lifetime_beyond_the_maximum_is_refused() -> None:
    checker = validator(max_token_lifetime=3600)
    assert result(token(exp=int(NOW) + 3600), checker) == "valid"
    assert result(token(exp=int(NOW) + 3601), checker) == "malformed"
    assert result(token(iat=int(NOW) - 10**6), checker) == "malformed"


def test_high_s_twin_of_a_valid_token_is_the_same_valid_token() -> None:
    original = token()
    twin = high_s_twin(original)
    raw = base64.urlsafe_b64decode(twin.split(".")[2] + "==")
    assert twin != original and is_high_s("ES256", raw)
    # the twin is a real signature: cryptography accepts it, and so does the gateway
    signing_input = ".".join(twin.split(".")[:2]).encode()
    assert JWSRegistry.algorithms["ES256"].verify(signing_input, raw, KEY)
    checker = validator()
    outcomes = [asyncio.run(checker.validate(t)) for t in (original, twin)]
    assert [o.result for o in outcomes] == ["valid", "valid"]
    assert outcomes[0].claims == outcomes[1].claims
    # one token, one name in the logs
    assert token_fingerprint(twin) == token_fingerprint(original)


@pytest.mark.parametrize(
    ("overrides", "first", "again"),
    [
        ({"exp": int(NOW) - 3600, "iat": int(NOW) - 3900}, "expired", "expired_replayed"),
        ({"aud": "api://elsewhere"}, "wrong_audience", "wrong_audience_replayed"),
    ],
)
def test_the_high_s_twin_of_a_token_counted_once_is_a_replay(
    overrides: dict, first: str, again: str
) -> None:
    checker = validator()
    original = token(**overrides)
    assert result(original, checker) == first
    assert result(high_s_twin(original), checker) == again
    # and the other way round: the twin first, then the original
    other = token(jti="twin-first", **overrides)
    assert result(high_s_twin(other), checker) == first
    assert result(other, checker) == again


def test_a_revoked_token_is_revoked_in_both_forms() -> None:
    original = token(jti="gone")
    checker = validator(is_revoked=lambda jti: jti == "gone")
    assert [result(t, checker) for t in (original, high_s_twin(original))] == ["revoked"] * 2


def test_other_second_spellings_of_an_ecdsa_signature_stay_refused() -> None:
    """Only the (r, n - s) twin is accepted; (r, s + n) and (r + n, s), which fit in
    P-521's 66-byte halves, are not signatures (s and r must be below n)."""
    key = jwk.generate_key("EC", "P-521", auto_kid=True)
    good = forge({"alg": "ES512", "typ": "at+jwt", "kid": key.kid}, claims(), key, "ES512")
    checker = validator(allowed_algs=("ES512",), keys=Keys({key.kid: key}))
    assert result(good, checker) == "valid"
    assert result(high_s_twin(good, "ES512"), checker) == "valid"
    head, payload, sig_b64 = good.split(".")
    raw = base64.urlsafe_b64decode(sig_b64 + "=" * (-len(sig_b64) % 4))
    r, s = int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")
    n = CURVE_ORDERS["ES512"]
    for r2, s2 in ((r, s + n), (r + n, s)):
        spelled = r2.to_bytes(66, "big") + s2.to_bytes(66, "big")
        assert result(f"{head}.{payload}.{b64(spelled)}", checker) == "bad_signature"


# ---------------------------------------------------------------- item 1: who vouches


def test_unknown_kid_without_anyone_vouching_is_unconfirmed() -> None:
    assert result(FORGED_UNKNOWN_KID) == "unknown_kid_unconfirmed"
    idp = IdPAnswers()
    assert result(FORGED_UNKNOWN_KID, validator(introspector=idp)) == "unknown_kid_unconfirmed"
    assert idp.calls == 1
    down = IdPAnswers(fail=True)
    assert result(FORGED_UNKNOWN_KID, validator(introspector=down)) == "unknown_kid_unconfirmed"


def test_unknown_kid_the_idp_vouches_for_counts_and_its_kid_is_remembered() -> None:
    unpublished = jwk.generate_key("EC", "P-256", auto_kid=True)
    first = token(key=unpublished, jti="t1")
    second = token(key=unpublished, jti="t2")
    idp = IdPAnswers({first: {"active": True, "iss": ISS}})
    checker = validator(introspector=idp)
    assert result(first, checker) == "unknown_kid"
    # the kid is now known to be the IdP's own: no further introspection per token
    assert result(second, checker) == "unknown_kid"
    assert idp.calls == 1
    # an active answer from a foreign issuer vouches for nothing
    other = token(key=jwk.generate_key("EC", "P-256", auto_kid=True))
    foreign = IdPAnswers({other: {"active": True, "iss": "https://evil.example"}})
    assert result(other, validator(introspector=foreign)) == "unknown_kid_unconfirmed"


def test_an_expired_token_counts_once_then_is_a_replay() -> None:
    checker = validator()
    old = token(exp=int(NOW) - 3600, iat=int(NOW) - 3900)
    assert result(old, checker) == "expired"
    assert result(old, checker) == "expired_replayed"
    assert result(old, checker) == "expired_replayed"
    assert result(token(jti="another", exp=int(NOW) - 3600), checker) == "expired"


def test_introspection_budget_bounds_calls_for_opaque_garbage() -> None:
    clock = [0.0]
    idp = IdPAnswers()
    budget = v.TokenBucket(rate=2, burst=4, clock=lambda: clock[0])
    introspector = CachedIntrospector(idp, IntrospectionCache(5, clock=lambda: clock[0]), budget)
    checker = validator(introspector=introspector)
    labels = [result(f"garbage{i:04d}", checker) for i in range(50)]
    assert labels[:4] == ["inactive"] * 4
    assert set(labels[4:]) == {"introspection_throttled"}
    assert idp.calls == 4
    clock[0] += 1.0  # two more calls per second
    assert [result(f"later{i}", checker) for i in range(3)] == [
        "inactive",
        "inactive",
        "introspection_throttled",
    ]
    assert idp.calls == 6


# ---------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with threaded_lab(tmp_path_factory.mktemp("gw-hostile"), jwks_refresh_cooldown=30) as lab:
        yield lab


def server_errors(lab: Lab) -> float:
    return sum(
        metric(lab.gateway_url, "gateway_requests_total", code=code)
        for code in ("500", "502", "503", "504")
    )


@pytest.mark.lab
def test_issue_reproducers_get_401_with_a_label_and_one_log_line(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    key, alg = lab.signing_key()
    header = {"alg": alg, "typ": "at+jwt", "kid": str(key.kid)}
    cases = {
        "nested-header": (forge(nested(), claims_for(lab), key, alg), "malformed"),
        "nested-payload": (forge(header, nested(), key, alg), "malformed"),
        "exp-10**400": (forge(header, claims_for(lab, exp=10**400), key, alg), "malformed"),
        "forged-unknown-kid": (FORGED_UNKNOWN_KID, "unknown_kid_unconfirmed"),
    }
    errors = server_errors(lab)
    caplog.set_level(logging.INFO, logger="tokenslo")
    for name, (tok, expected) in cases.items():
        response = lab.call(tok)
        assert response.status_code == 401, (name, response.text[:200])
        assert "Traceback" not in response.text
        assert result_of(lab, tok) == expected, name
    assert server_errors(lab) == errors
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "\n" not in record.getMessage()


@pytest.mark.lab
def test_an_unexpected_exception_is_internal_error_not_500(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = lab.gateway_app.state.gateway

    class BrokenKeys:
        async def get(self, kid):
            raise RuntimeError("a bug nobody foresaw")

    working = gateway.validator.keys
    gateway.validator.keys = BrokenKeys()
    errors = server_errors(lab)
    caplog.set_level(logging.INFO, logger="tokenslo")
    try:
        before = validations(lab.gateway_url)["internal_error"]
        response = lab.call(lab.token()["access_token"])
    finally:
        gateway.validator.keys = working
    assert response.status_code == 401
    assert validations(lab.gateway_url)["internal_error"] == before + 1
    assert server_errors(lab) == errors
    lines = [r for r in caplog.records if "internal_error" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "RuntimeError" in lines[0].getMessage()


def leaked_expired_token(lab: Lab) -> str:
    """A genuine token of the lab IdP (signed with its key) that expired over 1.5 h ago."""
    key, alg = lab.signing_key()
    now = int(time.time())
    claims = claims_for(lab, iat=now - 7200, exp=now - 6900)
    return forge({"alg": alg, "typ": "at+jwt", "kid": str(key.kid)}, claims, key, alg)


@pytest.mark.lab
def test_genuine_token_replayed_long_after_expiry_burns_once(lab: Lab) -> None:
    leaked = leaked_expired_token(lab)
    assert result_of(lab, leaked) == "expired"
    assert [result_of(lab, leaked) for _ in range(5)] == ["expired_replayed"] * 5


@pytest.mark.lab
def test_high_s_twins_are_one_token_over_http(lab: Lab, caplog: pytest.LogCaptureFixture) -> None:
    _key, alg = lab.signing_key()
    issued = lab.token()["access_token"]
    signature = base64.urlsafe_b64decode(issued.split(".")[2] + "==")
    assert not is_high_s(alg, signature)  # the lab IdP signs the canonical form
    twin = high_s_twin(issued, alg)
    assert lab.call(twin).status_code == 200
    assert result_of(lab, twin) == "valid"
    leaked = leaked_expired_token(lab)
    caplog.set_level(logging.INFO, logger="tokenslo")
    assert result_of(lab, leaked) == "expired"
    assert result_of(lab, high_s_twin(leaked, alg)) == "expired_replayed"
    rejected = [r.getMessage() for r in caplog.records if " rejected result=" in r.getMessage()]
    assert len(rejected) == 2
    # both log lines name the token by its canonical form: one name for both twins
    name = token_fingerprint(leaked)
    assert rejected[0].startswith(f"token {name} rejected result=expired ")
    assert rejected[1].startswith(f"token {name} rejected result=expired_replayed ")


def test_forged_token_of_the_issue_is_the_documented_bytes() -> None:
    head = json.loads(base64.urlsafe_b64decode(FORGED_UNKNOWN_KID.split(".")[0] + "=="))
    assert head == {"typ": "at+jwt", "alg": "ES256", "kid": "no-such-kid"}
    assert FORGED_UNKNOWN_KID.split(".")[1] == "e30"
