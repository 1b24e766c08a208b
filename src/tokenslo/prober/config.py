"""What one prober runs against, and with which client credentials.

Credentials never come from command-line arguments (they would show in ``ps`` and
shell history): either ``TOKENSLO_CLIENT_ID``/``TOKENSLO_CLIENT_SECRET`` or a YAML
file, in the lab's ``credentials.yaml`` shape or a single ``client_id``/``client_secret``
mapping. Bad input raises ``InputError`` naming the file and field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tokenslo.errors import InputError
from tokenslo.spec.yamlpos import read_document

CLIENT_ID_ENV = "TOKENSLO_CLIENT_ID"
CLIENT_SECRET_ENV = "TOKENSLO_CLIENT_SECRET"
DEFAULT_CLIENT = "prober"  # the lab's client for this component


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class ProbeConfig:
    """One target and how hard to probe it; every wait below is bounded by these numbers."""

    target: str  # base URL of the IdP (its issuer)
    credentials: Credentials
    api: str | None = None  # protected resource called with the token (a gateway URL)
    interval: float = 15.0  # seconds between transaction starts
    timeout: float = 5.0  # per HTTP request
    propagation_timeout: float = 10.0  # give up waiting for revocation to propagate
    propagation_poll: float = 0.1  # seconds between propagation checks
    scope: str | None = None
    resource: str | None = None  # RFC 8707 resource indicator for the token request

    @property
    def label(self) -> str:
        """The ``target`` label of every metric: the URL without a trailing slash."""
        return normalize_url(self.target)


def normalize_url(url: str) -> str:
    return url.rstrip("/")


def check_url(value: str, field_name: str) -> str:
    """An absolute http(s) URL, else ``InputError``."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"must be an http(s) URL, got {value!r}", field=field_name)
    return value


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or just ``PORT``, meaning loopback) for the metrics endpoint."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise InputError(f"expected HOST:PORT with a port 1-65535, got {value!r}", field="--listen")
    return host, port


def positive(value: float, field_name: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"must be a positive number of seconds, got {value!r}", field=field_name)
    return value


def load_credentials(
    path: str | None, client_id: str | None = None, environ: dict[str, str] | None = None
) -> Credentials:
    """From ``path`` when given, else from the environment.

    A file with several clients (the lab's ``credentials.yaml``) is searched for
    ``client_id`` (default: the environment's ``TOKENSLO_CLIENT_ID``, else ``prober``).
    """
    env = os.environ if environ is None else environ
    if path is not None:
        return _from_file(Path(path), client_id or env.get(CLIENT_ID_ENV))
    cid = client_id or env.get(CLIENT_ID_ENV)
    secret = env.get(CLIENT_SECRET_ENV)
    if not cid or not secret:
        raise InputError(
            f"no client credentials: set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV}, "
            "or pass --credentials FILE",
            field="credentials",
        )
    return Credentials(cid, secret)


def _from_file(path: Path, wanted: str | None) -> Credentials:
    data = read_document(path).data
    if not isinstance(data, dict):
        raise InputError(
            "expected a mapping with client_id/client_secret or clients", file=str(path)
        )
    entries = data.get("clients", [data])
    if not isinstance(entries, list):
        raise InputError(
            "must be a list of {client_id, client_secret}", file=str(path), field="clients"
        )
    found = {
        str(e["client_id"]): str(e["client_secret"])
        for e in entries
        if isinstance(e, dict) and e.get("client_id") and e.get("client_secret")
    }
    if not found:
        raise InputError(
            "no entry with client_id and client_secret", file=str(path), field="clients"
        )
    if wanted is None:
        wanted = DEFAULT_CLIENT if DEFAULT_CLIENT in found or len(found) > 1 else next(iter(found))
    if wanted not in found:
        raise InputError(
            f"no client {wanted!r} (found: {', '.join(sorted(found))})",
            file=str(path),
            field="client_id",
        )
    return Credentials(wanted, found[wanted])
