"""Signing keys: the current key, rotation (published or not) and the JWKS.

The JWKS serves the newest ``PUBLISHED_KEEP`` *published* keys: the current one and its
predecessor, so tokens signed just before a rotation still verify until they expire.
A rotation with ``publish=False`` makes a key that signs tokens but is absent from the
JWKS — the "rotation without propagation" failure (F3) a gateway must survive.
The IdP itself keeps ``RETAINED`` keys (published or not) for introspection.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joserfc import jwk, jwt
from joserfc.errors import SecurityWarning

from tokenslo.errors import InputError

PUBLISHED_KEEP = 2
RETAINED = 5
# joserfc flags EdDSA as superseded by RFC 9864's fully specified names; the lab offers it
# on purpose because deployed gateways still expect "EdDSA".
warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)

_KEY_TYPES: dict[str, tuple[str, str | int]] = {
    "ES256": ("EC", "P-256"),
    "RS256": ("RSA", 2048),
    "EdDSA": ("OKP", "Ed25519"),
}


@dataclass
class SigningKey:
    key: jwk.Key
    alg: str
    created_at: float
    published: bool

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwk(self) -> dict:
        return dict(self.key.as_dict(private=False, alg=self.alg, use="sig"))


def generate_signing_key(alg: str, now: float, published: bool = True) -> SigningKey:
    key_type, size = _KEY_TYPES[alg]
    key = jwk.generate_key(key_type, size, auto_kid=True)  # kid = RFC 7638 thumbprint
    return SigningKey(key=key, alg=alg, created_at=now, published=published)


class KeyStore:
    """Thread-safe key set; persisted to ``keys_file`` (mode 0600) when one is given."""

    def __init__(
        self,
        alg: str,
        keys_file: Path | None = None,
        now: Callable[[], float] = time.time,
    ):
        self.alg = alg
        self._file = keys_file
        self._now = now
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = self._load() if keys_file else []  # oldest first
        if not self._keys or self._keys[-1].alg != alg:
            self._keys.append(generate_signing_key(alg, now()))
            self._save()
        self._by_kid = {k.kid: k for k in self._keys}

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def rotate(self, publish: bool = True) -> SigningKey:
        """Make a new current key; older keys stay retained for verification."""
        new = generate_signing_key(self.alg, self._now(), published=publish)
        with self._lock:
            self._keys = [*self._keys, new][-RETAINED:]
            self._by_kid = {k.kid: k for k in self._keys}
            self._save()
        return new

    def publish_current(self) -> SigningKey:
        """Publish the current key (the fix for a rotation that was not propagated)."""
        with self._lock:
            self.current.published = True
            self._save()
        return self.current

    def jwks(self) -> dict:
        published = [k for k in self._keys if k.published][-PUBLISHED_KEEP:]
        return {"keys": [k.public_jwk() for k in reversed(published)]}

    def sign(self, header: dict, claims: dict) -> str:
        key = self.current
        full = {**header, "alg": key.alg, "kid": key.kid}
        return jwt.encode(full, claims, key.key, algorithms=[key.alg], default_type=None)

    def verify(self, token: str) -> jwt.Token | None:
        """Decode a token signed by any retained key; None if it is not ours or is bad."""
        try:
            header = _unverified_header(token)
            key = self._by_kid.get(header.get("kid", ""))
            if key is None or header.get("alg") != key.alg:
                return None
            return jwt.decode(token, key.key, algorithms=[key.alg])
        except Exception:  # noqa: BLE001 - any decoding failure means "not a valid token"
            return None

    def _load(self) -> list[SigningKey]:
        assert self._file is not None
        if not self._file.exists():
            return []
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            return [
                SigningKey(
                    key=jwk.import_key(item["jwk"]),
                    alg=item["alg"],
                    created_at=float(item["created_at"]),
                    published=bool(item["published"]),
                )
                for item in data["keys"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"cannot load signing keys ({type(exc).__name__}); delete the file to "
                "generate new keys",
                file=str(self._file),
                field="keys_file",
            ) from None

    def _save(self) -> None:
        """Write atomically with mode 0600: the file holds private keys."""
        if self._file is None:
            return
        data = {
            "keys": [
                {
                    "jwk": dict(k.key.as_dict(private=True)),
                    "alg": k.alg,
                    "created_at": k.created_at,
                    "published": k.published,
                }
                for k in self._keys
            ]
        }
        self._file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._file.with_name(self._file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self._file)


def _unverified_header(token: str) -> dict:
    head = token.split(".", 1)[0]
    raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header
