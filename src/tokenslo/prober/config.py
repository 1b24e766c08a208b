"""What one prober runs against, and how hard: built from a target description.

Credentials come from the target file's ``prober`` client (tokenslo.target), never from
command-line arguments (they would show in ``ps`` and shell history). Bad input raises
``InputError`` naming the file and field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tokenslo.errors import InputError
from tokenslo.target.credentials import Credentials


@dataclass(frozen=True)
class ProbeConfig:
    """One target and how hard to probe it; every wait below is bounded by these numbers."""

    target: str  # where to discover the IdP (its issuer, or a proxy in front of it)
    credentials: Credentials
    api: str | None = None  # protected resource called with the token (a gateway URL)
    interval: float = 15.0  # seconds between transaction starts
    timeout: float = 5.0  # per HTTP request
    propagation_timeout: float = 10.0  # give up waiting for revocation to propagate
    propagation_poll: float = 0.1  # seconds between propagation checks
    scope: str | None = None
    resource: str | None = None  # RFC 8707 resource indicator for the token request
    issuer: str | None = None  # the issuer the metadata must name (default: ``target``)
    # The insufficient_scope check: a client whose tokens lack the scope ``write_api``
    # requires (role narrow_scope), its token-request fields, and the route it POSTs to.
    # Either missing: the check is "not configured", never failed.
    narrow: Credentials | None = None
    narrow_params: Mapping[str, str] = field(default_factory=dict)
    write_api: str | None = None

    @property
    def label(self) -> str:
        """The ``target`` label of every metric: the issuer without a trailing slash."""
        return normalize_url(self.issuer or self.target)


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
