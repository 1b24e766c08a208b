"""The lab's secrets: the admin secret, the webhook's bearer secret and the clients'
credentials, made once per state dir (mode 0600) and reused by every later ``lab up``.

The IdP only ever sees the clients' secrets as SHA-256 (``clients_registry``); the
plaintext stays in ``credentials.yaml`` for the load test, the prober and the gateway.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tokenslo.files import write_atomically
from tokenslo.lab.idp.clients import hash_secret
from tokenslo.spec.yamlpos import read_text
from tokenslo.target.credentials import secrets_in

ADMIN_SECRET_FILE = "admin-secret"
WEBHOOK_SECRET_FILE = "webhook-secret"  # Alertmanager's bearer credential for the webhook
CREDENTIALS_FILE = "credentials.yaml"
CLIENTS_FILE = "clients.yaml"


@dataclass(frozen=True)
class ClientSpec:
    client_id: str
    grant_types: tuple[str, ...] = ("client_credentials",)
    token_format: str = "jwt"
    scopes: tuple[str, ...] = ("api.read",)
    introspect: bool = True


# The lab's clients (the lab contract); secrets are generated once per state dir. Their
# scopes cover the gateway routes each one calls (lab.default.yaml ``route_scopes``): the
# load test (GET and POST) and the prober and opaque client (GET); a token asked for with
# no scope gets them all.
CLIENTS = (
    ClientSpec(
        "loadtest", ("client_credentials", "refresh_token"), scopes=("api.read", "api.write")
    ),
    ClientSpec("gateway", scopes=()),
    ClientSpec("prober", ("client_credentials", "refresh_token")),
    ClientSpec("opaque-client", token_format="opaque", introspect=False),
)


def ensure_admin_secret(state_dir: Path) -> Path:
    return ensure_secret(state_dir, ADMIN_SECRET_FILE)


def ensure_secret(state_dir: Path, name: str) -> Path:
    """A random secret in ``state_dir/name`` (0600), made once and then reused."""
    path = state_dir / name
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        write_atomically(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return path


def read_credentials(path: Path) -> dict[str, str]:
    """client_id → secret of the lab's credentials file (empty when there is none yet)."""
    if not path.exists():
        return {}
    found = secrets_in(read_text(path), str(path))
    found.pop("", None)  # the lab's file lists clients; a bare secret names none
    return found


def ensure_credentials(state_dir: Path) -> dict[str, str]:
    """Plaintext secrets of the lab clients, generated once (missing ones added), mode 0600."""
    path = state_dir / CREDENTIALS_FILE
    creds = read_credentials(path)
    missing = [c.client_id for c in CLIENTS if c.client_id not in creds]
    if missing or not path.exists():
        for client_id in missing:
            creds[client_id] = secrets.token_urlsafe(32)
        doc = {"clients": [{"client_id": k, "client_secret": v} for k, v in creds.items()]}
        header = "# tokenslo lab client credentials: plaintext, keep private (mode 0600)\n"
        write_atomically(path, header + yaml.safe_dump(doc, sort_keys=False), mode=0o600)
    return creds


def clients_registry(creds: dict[str, str], audience: str) -> dict[str, Any]:
    """The IdP's client registry: secrets only as SHA-256 (see tokenslo.lab.idp.clients)."""
    return {
        "clients": [
            {
                "client_id": spec.client_id,
                "secret_sha256": hash_secret(creds[spec.client_id]),
                "scopes": list(spec.scopes),
                "audiences": [audience],
                "token_ttl": 300,
                "token_format": spec.token_format,
                "grant_types": list(spec.grant_types),
                "refresh_ttl": 3600,
                "introspect": spec.introspect,
            }
            for spec in CLIENTS
        ]
    }
