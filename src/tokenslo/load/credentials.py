"""Client credentials for the load tests: from the environment or a YAML file, never from argv.

Command-line arguments are visible to every local user (``ps``) and end up in CI
logs, so the secret only ever travels through ``TOKENSLO_CLIENT_ID`` /
``TOKENSLO_CLIENT_SECRET`` or a file (the lab's ``credentials.yaml`` format, or a
plain ``{client_id, client_secret}`` mapping).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tokenslo.errors import InputError
from tokenslo.spec.yamlpos import read_document

ENV_ID = "TOKENSLO_CLIENT_ID"
ENV_SECRET = "TOKENSLO_CLIENT_SECRET"
ENV_FILE = "TOKENSLO_CREDENTIALS"
DEFAULT_CLIENT = "loadtest"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str = field(repr=False)

    def basic_auth(self) -> str:
        """RFC 6749 §2.3.1 client_secret_basic header value (form-urlencoded parts)."""
        raw = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return "Basic " + base64.b64encode(raw.encode()).decode("ascii")

    def as_env(self) -> dict[str, str]:
        """Environment for a child process (Locust) that must authenticate the same way."""
        return {ENV_ID: self.client_id, ENV_SECRET: self.client_secret}


def from_env(env: Mapping[str, str]) -> Credentials | None:
    """Credentials from the environment, or None when neither variable is set."""
    client_id, secret = env.get(ENV_ID, ""), env.get(ENV_SECRET, "")
    if not client_id and not secret:
        return None
    if not client_id or not secret:
        missing = ENV_ID if not client_id else ENV_SECRET
        raise InputError(f"{missing} is not set (set both {ENV_ID} and {ENV_SECRET})")
    return Credentials(client_id, secret)


def from_mapping(data: object, client_id: str, file: str) -> Credentials:
    """Pick ``client_id`` from a lab-style ``clients:`` list, or take a single mapping."""
    if isinstance(data, dict) and isinstance(data.get("clients"), list):
        for entry in data["clients"]:
            if isinstance(entry, dict) and entry.get("client_id") == client_id:
                return _entry(entry, file)
        raise InputError(f"no client {client_id!r} in clients", file=file, field="clients")
    if isinstance(data, dict) and "client_id" in data:
        return _entry(data, file)
    raise InputError(
        "expected {client_id, client_secret} or clients: [{client_id, client_secret}]", file=file
    )


def _entry(entry: dict, file: str) -> Credentials:
    client_id, secret = entry.get("client_id"), entry.get("client_secret")
    if not isinstance(client_id, str) or not client_id:
        raise InputError("must be a non-empty string", file=file, field="client_id")
    if not isinstance(secret, str) or not secret:
        raise InputError("must be a non-empty string", file=file, field="client_secret")
    return Credentials(client_id, secret)


def from_file(path: str | Path, client_id: str = DEFAULT_CLIENT) -> Credentials:
    return from_mapping(read_document(path).data, client_id, str(path))


def load_credentials(
    file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    client_id: str = DEFAULT_CLIENT,
) -> Credentials:
    """Environment first, then ``file`` (or ``$TOKENSLO_CREDENTIALS``); else bad input."""
    env = os.environ if env is None else env
    found = from_env(env)
    if found is not None:
        return found
    path = file or env.get(ENV_FILE)
    if path:
        return from_file(path, client_id)
    raise InputError(
        f"no client credentials: set {ENV_ID} and {ENV_SECRET}, or give a credentials file "
        f"(--credentials FILE or {ENV_FILE})"
    )
