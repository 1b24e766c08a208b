"""The canonical form of a JWS (tokenslo.jws): both ECDSA twins of a token get one name."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from joserfc import jwk
from joserfc.jws import JWSRegistry

from tokenslo.jws import CURVE_ORDERS, canonical_jws, is_high_s, to_low_s, token_fingerprint

N256 = CURVE_ORDERS["ES256"]
R = (12345).to_bytes(32, "big")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def segment(value: dict) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def jws(alg: str, signature: bytes) -> str:
    return f"{segment({'alg': alg, 'typ': 'at+jwt'})}.{segment({'jti': 'j'})}.{b64(signature)}"


def s_bytes(s: int, size: int = 32) -> bytes:
    return R[:size].rjust(size, b"\0") + s.to_bytes(size, "big")


def test_n_minus_s_by_hand() -> None:
    # n is odd: n = 2k + 1, so k = n // 2 is the largest low s and k + 1 the smallest high one
    k = (N256 - 1) // 2
    assert N256 % 2 == 1  # n = 2k + 1
    assert not is_high_s("ES256", s_bytes(k))
    assert is_high_s("ES256", s_bytes(k + 1))
    assert to_low_s("ES256", s_bytes(k)) == s_bytes(k)
    assert to_low_s("ES256", s_bytes(k + 1)) == s_bytes(k)  # n - (k + 1) = k
    # s = n - 1 is the twin of s = 1, written out in hex
    n_minus_1 = bytes.fromhex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632550")
    assert to_low_s("ES256", R + n_minus_1) == R + (1).to_bytes(32, "big")
    # s >= n is no signature and has no twin; non-ECDSA algorithms have no S at all
    assert to_low_s("ES256", s_bytes(N256)) == s_bytes(N256)
    assert to_low_s("RS256", s_bytes(k + 1)) == s_bytes(k + 1)
    assert not is_high_s("RS256", s_bytes(k + 1))


def test_the_twins_of_a_real_token_share_one_canonical_form_and_name() -> None:
    key = jwk.generate_key("EC", "P-256")
    head = segment({"alg": "ES256", "typ": "at+jwt"})
    body = segment({"jti": "abc"})
    raw = JWSRegistry.algorithms["ES256"].sign(f"{head}.{body}".encode(), key)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    low_s, high_s = min(s, N256 - s), max(s, N256 - s)
    low = f"{head}.{body}.{b64(r + low_s.to_bytes(32, 'big'))}"
    high = f"{head}.{body}.{b64(r + high_s.to_bytes(32, 'big'))}"
    for token in (low, high):  # both verify: neither is a forgery
        sig = base64.urlsafe_b64decode(token.split(".")[2] + "==")
        assert JWSRegistry.algorithms["ES256"].verify(f"{head}.{body}".encode(), sig, key)
    assert canonical_jws(high) == canonical_jws(low) == low
    assert token_fingerprint(high) == token_fingerprint(low)
    assert token_fingerprint(low) == hashlib.sha256(low.encode()).hexdigest()[:12]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "opaque-token-value",
        "a.b",
        "a.b.c.d",
        jws("RS256", s_bytes(N256 - 1)),  # not ECDSA: nothing to normalise
        jws("ES384", s_bytes(N256 - 1)),  # a P-256-sized signature is no ES384 signature
        jws("ES256", s_bytes(N256 + 1)),  # s >= n
        jws("ES256", s_bytes(N256 - 1)) + "=",  # padded: not canonical base64url
        jws("ES256", s_bytes(N256 - 1))[:-1] + "!",  # not base64url at all
        "%%%." + jws("ES256", s_bytes(N256 - 1)).split(".", 1)[1],  # header not base64url
        f"{b64(b'[1]')}.e30.{b64(s_bytes(N256 - 1))}",  # header not an object
        f"{b64(b'{')}.e30.{b64(s_bytes(N256 - 1))}",  # header not JSON
        f"{segment({'alg': 7})}.e30.{b64(s_bytes(N256 - 1))}",  # alg not a string
        f"{b64(b'[' * 5000 + b']' * 5000)}.e30.{b64(s_bytes(N256 - 1))}",  # too long to read
    ],
)
def test_anything_else_is_left_as_it_is(token: str) -> None:
    assert canonical_jws(token) == token


def test_a_non_canonical_last_character_is_not_renamed() -> None:
    """``…A`` and ``…B`` may decode alike; the gateway refuses the odd spelling as
    malformed, so it keeps a name of its own rather than the real token's."""
    token = jws("ES256", s_bytes(N256 - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    odd = token[:-1] + alphabet[alphabet.index(token[-1]) ^ 1]
    assert base64.urlsafe_b64decode(odd.split(".")[2] + "==") == s_bytes(N256 - 1)
    assert canonical_jws(token) != token
    assert canonical_jws(odd) == odd
