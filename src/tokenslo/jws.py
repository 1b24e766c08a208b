"""The canonical form of a JWS, so that the twins of one token share one name.

An ECDSA signature (r, s) has a twin (r, n - s) that verifies just as well
(neither joserfc nor ``cryptography`` tells them apart), so anyone holding one
ES256/384/512 token can write a second, byte-different copy of it. Real IdPs do
not normalise S (RFC 7518 §3.4 does not ask them to: Node's crypto, under
oidc-provider, signs about half its tokens high-S), so a gateway must accept
both forms. What it must not do is treat the twins as two tokens: every
per-token defence keys on the ``jti`` claim, and anything that names a token by
its bytes (log fingerprints, ``tokenslo scan``, the introspection cache) names
it by its canonical, low-S form (``canonical_jws``). The lab IdP signs that
form directly.

Pure and a shared leaf: the lab (IdP and gateway) and ``scan`` both use it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

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
# A header is a few hundred bytes; anything longer is not worth decoding to find ``alg``.
_MAX_HEADER_CHARS = 8192


def _split(alg: str, signature: bytes) -> tuple[int, bytes, int] | None:
    """(n, r bytes, s) of a raw JWS ECDSA signature, or None when it is not one."""
    order = CURVE_ORDERS.get(alg)
    if order is None or not signature or len(signature) % 2:
        return None
    half = len(signature) // 2
    return order, signature[:half], int.from_bytes(signature[half:], "big")


def is_high_s(alg: str, signature: bytes) -> bool:
    """True for the twin form with s > n / 2; False for other algorithms."""
    parts = _split(alg, signature)
    return parts is not None and parts[2] > parts[0] // 2


def to_low_s(alg: str, signature: bytes) -> bytes:
    """The low-S twin of an ECDSA signature (unchanged when already low-S or not ECDSA)."""
    parts = _split(alg, signature)
    if parts is None or parts[2] <= parts[0] // 2:
        return signature
    order, r, s = parts
    if s >= order:  # not a signature at all (verification refuses it): no twin to name
        return signature
    return r + (order - s).to_bytes(len(signature) - len(r), "big")


def canonical_jws(token: str) -> str:
    """``token`` with a high-S ECDSA signature replaced by its low-S twin.

    Any other string comes back unchanged: not three segments, a header that is
    not a JSON object with a string ``alg``, a non-ECDSA ``alg``, a signature
    that is not canonical base64url (the gateway refuses that spelling anyway,
    and naming it like the real token would blur two different inputs).
    """
    parts = token.split(".")
    if len(parts) != 3 or len(parts[0]) > _MAX_HEADER_CHARS:
        return token
    alg = _header_alg(parts[0])
    signature = _b64decode(parts[2])
    if alg is None or signature is None:
        return token
    low = to_low_s(alg, signature)
    if low == signature:
        return token
    return f"{parts[0]}.{parts[1]}.{_b64encode(low)}"


def token_fingerprint(token: str) -> str:
    """How a token is named in logs and by ``tokenslo scan``: the first 12 hex digits of
    the SHA-256 of its canonical form (both ECDSA twins of a token get one name)."""
    return hashlib.sha256(canonical_jws(token).encode("utf-8")).hexdigest()[:12]


def _header_alg(segment: str) -> str | None:
    raw = _b64decode(segment)
    if raw is None:
        return None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    alg = header.get("alg") if isinstance(header, dict) else None
    return alg if isinstance(alg, str) else None


def _b64decode(segment: str) -> bytes | None:
    """Strict base64url without padding; None unless ``segment`` is its canonical spelling."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64encode(raw) == segment else None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
