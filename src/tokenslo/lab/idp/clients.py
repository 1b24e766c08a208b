"""The client registry and client authentication.

Secrets are stored as SHA-256 hex, not bcrypt/scrypt: lab secrets are machine-generated
with ≥ 256 bits of entropy, so a slow hash adds no protection against guessing, while it
would cap issuance throughput at a few hundred requests per second and make the load
tests measure the hash instead of the IdP. Comparison is constant-time
(``hmac.compare_digest``), and unknown client ids are compared against a dummy digest so
response time does not reveal which client ids exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenslo.errors import InputError
from tokenslo.lab.idp.config import YamlDoc, load_yaml

GRANT_TYPES = ("client_credentials", "refresh_token")
TOKEN_FORMATS = ("jwt", "opaque")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DUMMY_DIGEST = hashlib.sha256(b"tokenslo-no-such-client").hexdigest()
_FIELDS = (
    "client_id",
    "secret_sha256",
    "scopes",
    "audiences",
    "token_ttl",
    "token_format",
    "grant_types",
    "refresh_ttl",
    "introspect",
)


def hash_secret(secret: str) -> str:
    """The ``secret_sha256`` value to store for a client secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Client:
    client_id: str
    secret_sha256: str
    scopes: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    token_ttl: int = 300
    token_format: str = "jwt"
    grant_types: tuple[str, ...] = ("client_credentials",)
    refresh_ttl: int = 3600
    # May call /introspect and /revocations (resource servers such as the gateway).
    introspect: bool = True


class ClientRegistry:
    def __init__(self, clients: Iterable[Client]):
        self._clients = {c.client_id: c for c in clients}

    def __len__(self) -> int:
        return len(self._clients)

    def __iter__(self) -> Iterator[Client]:
        return iter(self._clients.values())

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        """The client if ``secret`` matches, else None; timing does not depend on which."""
        client = self._clients.get(client_id)
        expected = client.secret_sha256 if client else _DUMMY_DIGEST
        ok = hmac.compare_digest(hash_secret(secret), expected)
        return client if ok and client is not None else None


def load_clients(path: str | Path) -> ClientRegistry:
    """Load the clients YAML (``clients: [...]``); bad input raises ``InputError``."""
    return parse_clients(load_yaml(path))


def parse_clients(doc: YamlDoc) -> ClientRegistry:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
        raise doc.error("expected a mapping with a 'clients' list", (), "clients")
    for key in data:
        if key != "clients":
            raise doc.error("unknown field (expected 'clients')", (key,), key)
    clients: list[Client] = []
    seen: set[str] = set()
    for index, item in enumerate(data["clients"]):
        client = _parse_client(doc, item, ("clients", index))
        if client.client_id in seen:
            raise doc.error(
                f"duplicate client_id {client.client_id!r}",
                ("clients", index, "client_id"),
                f"clients[{index}].client_id",
            )
        seen.add(client.client_id)
        clients.append(client)
    if not clients:
        raise doc.error("at least one client is required", ("clients",), "clients")
    return ClientRegistry(clients)


def _parse_client(doc: YamlDoc, item: object, path: tuple) -> Client:
    where = f"clients[{path[-1]}]"
    if not isinstance(item, dict):
        raise doc.error("each client must be a mapping", path, where)
    for key in item:
        if key not in _FIELDS:
            raise doc.error(
                f"unknown field (expected one of {', '.join(_FIELDS)})",
                (*path, key),
                f"{where}.{key}",
            )

    def fail(key: str, message: str) -> InputError:
        return doc.error(message, (*path, key), f"{where}.{key}")

    client_id = item.get("client_id")
    if not isinstance(client_id, str) or not client_id or ":" in client_id:
        raise fail("client_id", "required non-empty string without ':'")
    digest = item.get("secret_sha256")
    if not isinstance(digest, str) or not _HEX64.match(digest):
        raise fail("secret_sha256", "required: 64 lowercase hex digits (SHA-256 of the secret)")
    scopes = _strings(item.get("scopes", []), lambda m: fail("scopes", m))
    audiences = _strings(item.get("audiences", []), lambda m: fail("audiences", m))
    grants = _strings(
        item.get("grant_types", ["client_credentials"]), lambda m: fail("grant_types", m)
    )
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise fail("grant_types", f"unsupported {grant!r} (expected {', '.join(GRANT_TYPES)})")
    token_format = item.get("token_format", "jwt")
    if token_format not in TOKEN_FORMATS:
        raise fail("token_format", f"must be one of {', '.join(TOKEN_FORMATS)}")
    introspect = item.get("introspect", True)
    if not isinstance(introspect, bool):
        raise fail("introspect", "must be true or false")
    return Client(
        client_id=client_id,
        secret_sha256=digest,
        scopes=scopes,
        audiences=audiences,
        token_ttl=_positive_int(item, "token_ttl", 300, fail),
        token_format=token_format,
        grant_types=grants,
        refresh_ttl=_positive_int(item, "refresh_ttl", 3600, fail),
        introspect=introspect,
    )


def _strings(value: object, fail) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail("must be a list of non-empty strings")
    if any(" " in v for v in value):
        raise fail("entries must not contain spaces")
    return tuple(value)


def _positive_int(item: dict, key: str, default: int, fail) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise fail(key, "must be a positive integer (seconds)")
    return value
