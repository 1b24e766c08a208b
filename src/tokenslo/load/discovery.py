"""RFC 8414 authorization server metadata: find the endpoints from a base URL.

Load tests and the gate need only the issuer's base URL; every endpoint comes
from its metadata, so the same scenarios run against the lab and any other
RFC 8414 IdP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from tokenslo.errors import InputError, UnavailableError

WELL_KNOWN = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    token_endpoint: str
    jwks_uri: str | None = None
    introspection_endpoint: str | None = None
    revocation_endpoint: str | None = None
    metadata_url: str | None = None  # the document discovery succeeded with

    def get(self, name: str) -> str | None:
        """An endpoint by its metadata name (``protocol.NEEDS`` lists them), or None."""
        value = getattr(self, name, None)
        return value if isinstance(value, str) and value else None

    def require(self, name: str) -> str:
        """The endpoint a scenario needs; bad input when the IdP does not advertise it."""
        value = getattr(self, name)
        if not value:
            raise InputError(f"the IdP's metadata has no {name}", field=name)
        return value


def metadata_urls(base_url: str) -> list[str]:
    """Where RFC 8414 §3 (and OpenID Discovery) put the metadata for ``base_url``.

    For an issuer with a path, RFC 8414 inserts the well-known segment between the
    host and the path; OpenID Discovery appends it. Both are tried.
    """
    base = base_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    if not slash:
        return [base + suffix for suffix in WELL_KNOWN]
    return [f"{scheme}://{host}{WELL_KNOWN[0]}/{path}"] + [base + s for s in WELL_KNOWN]


def parse_metadata(data: Any, url: str) -> Endpoints:
    """Endpoints from a metadata document (pure); bad input when required fields are missing."""
    if not isinstance(data, dict):
        raise InputError("metadata is not a JSON object", file=url)
    for key in ("issuer", "token_endpoint"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InputError("missing or not a string", file=url, field=key)

    def optional(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    return Endpoints(
        issuer=data["issuer"],
        token_endpoint=data["token_endpoint"],
        jwks_uri=optional("jwks_uri"),
        introspection_endpoint=optional("introspection_endpoint"),
        revocation_endpoint=optional("revocation_endpoint"),
        metadata_url=url,
    )


def discover(base_url: str, timeout: float = 5.0, session: Any = None) -> Endpoints:
    """Fetch and parse the metadata; exit 3 when the target cannot be reached at all."""
    http = session or requests
    problems = []
    for url in metadata_urls(base_url):
        try:
            response = http.get(url, timeout=timeout, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            problems.append(f"{url}: {type(exc).__name__}")
            continue
        if response.status_code != 200:
            problems.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            data = response.json()
        except ValueError:
            raise InputError("metadata is not JSON", file=url) from None
        return parse_metadata(data, url)
    raise UnavailableError(f"discovery failed for {base_url}: {'; '.join(problems)}")
