"""Canonical (low-S) ECDSA signatures for JWS, shared by the IdP (signs) and gateway (checks).

An ECDSA signature (r, s) has a twin (r, n - s) that verifies just as well, so
anyone holding one token can mint a second, byte-different copy of it: a new
fingerprint, a new cache key, a new "distinct" token for every per-token
defence. Neither joserfc nor ``cryptography`` refuses the twin, so the lab
makes ``s <= n / 2`` the only accepted form (as libsecp256k1 does): the IdP
normalises what it signs, the gateway rejects the rest.
"""

from __future__ import annotations

# Group orders n of the NIST curves (SEC 2, FIPS 186-4 D.1.2).
CURVE_ORDERS = {
    "ES256": int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16),
    "ES384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
        "581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "ES512": int(
        "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
        "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


def _split(alg: str, signature: bytes) -> tuple[int, bytes, int] | None:
    """(n, r bytes, s) of a raw JWS ECDSA signature, or None when it is not one."""
    order = CURVE_ORDERS.get(alg)
    if order is None or not signature or len(signature) % 2:
        return None
    half = len(signature) // 2
    return order, signature[:half], int.from_bytes(signature[half:], "big")


def is_high_s(alg: str, signature: bytes) -> bool:
    """True for the malleable twin form (s > n / 2); False for other algorithms."""
    parts = _split(alg, signature)
    return parts is not None and parts[2] > parts[0] // 2


def to_low_s(alg: str, signature: bytes) -> bytes:
    """The canonical twin of an ECDSA signature (unchanged when already low-S or not ECDSA)."""
    parts = _split(alg, signature)
    if parts is None or parts[2] <= parts[0] // 2:
        return signature
    order, r, s = parts
    return r + (order - s).to_bytes(len(signature) - len(r), "big")
