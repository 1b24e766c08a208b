"""Signing keys: the current key, rotation (published or not) and the JWKS.

The JWKS serves the newest ``PUBLISHED_KEEP`` *published* keys: the current one and its
predecessor, so tokens signed just before a rotation still verify until they expire.
A rotation with ``publish=False`` makes a key that signs tokens but is absent from the
JWKS — the "rotation without propagation" failure (F3) a gateway must survive. Like
every injected fault it carries an expiry (``publish_at``, real time, persisted with the
key) that the store enforces itself: a due key is published on the next signing or JWKS
request, or by the IdP's housekeeping thread, whether or not whoever rotated it is alive.
The IdP itself keeps ``RETAINED`` keys (published or not) for introspection.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joserfc import jwk, jwt
from joserfc.errors import SecurityWarning

from tokenslo.errors import InputError
from tokenslo.files import write_atomically
from tokenslo.jws import canonical_jws

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
    publish_at: float | None = None  # unpublished keys: when they publish themselves

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwk(self) -> dict:
        return dict(self.key.as_dict(private=False, alg=self.alg, use="sig"))


def generate_signing_key(alg: str, now: float, published: bool = True) -> SigningKey:
    key_type, size = _KEY_TYPES[alg]
    # kid = RFC 7638 thumbprint. joserfc's overloads take one literal key type each; the
    # function itself takes any of them.
    key = jwk.generate_key(key_type, size, auto_kid=True)  # type: ignore[call-overload]
    return SigningKey(key=key, alg=alg, created_at=now, published=published)


class KeyStore:
    """Thread-safe key set; persisted to ``keys_file`` (mode 0600) when one is given."""

    def __init__(
        self,
        alg: str,
        keys_file: Path | None = None,
        now: Callable[[], float] = time.time,
        *,
        real_now: Callable[[], float] = time.time,
        on_publish: Callable[[SigningKey, str], None] | None = None,
    ):
        """``now``: service time (may be skewed by a clock fault), stamps ``created_at``;
        ``real_now``: the clock expiries are enforced on (never skewed);
        ``on_publish(key, reason)``: called after a pending key is published."""
        self.alg = alg
        self._file = keys_file
        self._now = now
        self._real_now = real_now
        self._on_publish = on_publish
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = self._load() if keys_file else []  # oldest first
        if not self._keys or self._keys[-1].alg != alg:
            self._keys.append(generate_signing_key(alg, now()))
            self._save()
        self._by_kid = {k.kid: k for k in self._keys}
        self._next_due = self._earliest_due()

    @property
    def current(self) -> SigningKey:
        return self._keys[-1]

    def rotate(self, publish: bool = True, publish_in: float | None = None) -> SigningKey:
        """Make a new current key; older keys stay retained for verification.

        An unpublished key needs ``publish_in`` (seconds > 0): it publishes itself then.
        """
        if not publish and (publish_in is None or not publish_in > 0):
            raise ValueError("an unpublished key needs publish_in > 0 seconds")
        new = generate_signing_key(self.alg, self._now(), published=publish)
        if not publish:
            new.publish_at = self._real_now() + float(publish_in)  # type: ignore[arg-type]
        with self._lock:
            self._keys = [*self._keys, new][-RETAINED:]
            self._by_kid = {k.kid: k for k in self._keys}
            self._next_due = self._earliest_due()
            self._save()
        return new

    def publish_current(self) -> SigningKey:
        """Publish the current key (the fix for a rotation that was not propagated)."""
        with self._lock:
            key = self.current
            was_pending = not key.published
            key.published, key.publish_at = True, None
            self._next_due = self._earliest_due()
            self._save()
        if was_pending and self._on_publish is not None:
            self._on_publish(key, "published")
        return key

    def pending(self) -> list[SigningKey]:
        """Unpublished keys still waiting for their expiry, soonest first."""
        self.publish_due()
        with self._lock:
            waiting = [k for k in self._keys if not k.published and k.publish_at is not None]
        return sorted(waiting, key=lambda k: k.publish_at or 0.0)

    def keys(self) -> list[SigningKey]:
        """Every retained key, oldest first (after publishing any that are due)."""
        self.publish_due()
        with self._lock:
            return list(self._keys)

    def publish_due(self) -> list[SigningKey]:
        """Publish every unpublished key whose expiry has passed; cheap when none is due."""
        due_at = self._next_due
        if due_at is None or self._real_now() < due_at:
            return []
        with self._lock:
            now = self._real_now()
            due = [
                k for k in self._keys
                if not k.published and k.publish_at is not None and k.publish_at <= now
            ]  # fmt: skip
            for key in due:
                key.published, key.publish_at = True, None
            self._next_due = self._earliest_due()
            if due:
                self._save()
        for key in due:
            if self._on_publish is not None:
                self._on_publish(key, "expired")
        return due

    def _earliest_due(self) -> float | None:
        times = [k.publish_at for k in self._keys if not k.published and k.publish_at is not None]
        return min(times) if times else None

    def jwks(self) -> dict:
        self.publish_due()
        published = [k for k in self._keys if k.published][-PUBLISHED_KEEP:]
        return {"keys": [k.public_jwk() for k in reversed(published)]}

    def sign(self, header: dict, claims: dict) -> str:
        self.publish_due()
        key = self.current
        full = {**header, "alg": key.alg, "kid": key.kid}
        token = jwt.encode(full, claims, key.key, algorithms=[key.alg], default_type=None)
        # low-S, the form every log names a token by (tokenslo.jws); gateways accept both
        return canonical_jws(token)

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
                    # a legacy pending key without an expiry is due at once
                    publish_at=_optional_float(
                        item.get("publish_at", None if item["published"] else 0.0)
                    ),
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
                    "publish_at": k.publish_at,
                }
                for k in self._keys
            ]
        }
        self._file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self._file, json.dumps(data), mode=0o600)


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _unverified_header(token: str) -> dict:
    head = token.split(".", 1)[0]
    raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header
