"""RFC 8414 / OpenID discovery of a target's endpoints (through its proxy, when it has one).

The target names the issuer (what tokens carry) and where to discover
(``discovery_url``: the issuer itself, or a ``tokenslo proxy`` in front of it). A
metadata document's ``issuer`` must equal the declared issuer, so a proxy may serve
the document while its endpoints point back at the proxy. Endpoint overrides from the
target file win over discovered values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import requests

from tokenslo.errors import InputError, UnavailableError
from tokenslo.target.model import Target

ENDPOINT_FIELDS = ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint")
RFC8414 = "/.well-known/oauth-authorization-server"
OPENID = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class Endpoints:
    issuer: str
    token_endpoint: str
    jwks_uri: str | None = None
    introspection_endpoint: str | None = None
    revocation_endpoint: str | None = None
    metadata_url: str = ""  # the document these came from (what a discovery task re-fetches)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)

    def get(self, name: str) -> str | None:
        """An endpoint by its metadata name (``load.protocol.NEEDS`` lists them), or None."""
        value = getattr(self, name, None)
        return value if isinstance(value, str) and value else None

    def require(self, name: str) -> str:
        """The endpoint a caller needs; bad input when the IdP does not advertise it."""
        value = getattr(self, name)
        if not value:
            raise InputError(f"the IdP's metadata has no {name}", field=name)
        return value


def metadata_urls(base_url: str) -> list[str]:
    """Where RFC 8414 §3 (and OpenID Discovery) put the metadata for ``base_url``: for an
    issuer with a path RFC 8414 inserts the well-known segment before the path, OpenID
    appends it; both are tried, RFC 8414 first."""
    base = base_url.rstrip("/")
    scheme, _, rest = base.partition("://")
    host, slash, path = rest.partition("/")
    if not slash:
        return [base + RFC8414, base + OPENID]
    return [f"{scheme}://{host}{RFC8414}/{path}", base + RFC8414, base + OPENID]


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
        documents={url: data},
    )


def fetch_documents(base_url: str, timeout: float = 5.0, session: Any = None) -> dict[str, Any]:
    """Every metadata document found for ``base_url`` (url → JSON); problems as strings under
    the key ``"problems"``. Unreachable target → exit 3."""
    http = session or requests
    found: dict[str, Any] = {}
    problems: list[str] = []
    reached = False
    for url in metadata_urls(base_url):
        try:
            response = http.get(url, timeout=timeout, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            problems.append(f"{url}: {type(exc).__name__}")
            continue
        reached = True
        if response.status_code != 200:
            problems.append(f"{url}: HTTP {response.status_code}")
            continue
        try:
            found[url] = response.json()
        except ValueError:
            problems.append(f"{url}: not JSON")
    if not reached:
        raise UnavailableError(f"discovery failed for {base_url}: {'; '.join(problems)}")
    return {"documents": found, "problems": problems}


def discover_url(base_url: str, issuer: str | None = None, timeout: float = 5.0) -> Endpoints:
    """The first metadata document that parses (and names ``issuer``, when given)."""
    fetched = fetch_documents(base_url, timeout)
    documents: dict[str, Any] = fetched["documents"]
    if not documents:
        problems = "; ".join(fetched["problems"])
        raise UnavailableError(f"discovery failed for {base_url}: {problems}")
    url, data = next(iter(documents.items()))
    endpoints = parse_metadata(data, url)
    if issuer is not None and endpoints.issuer.rstrip("/") != issuer.rstrip("/"):
        raise InputError(
            f"the metadata names issuer {endpoints.issuer!r}, the target declares {issuer!r}",
            file=url,
            field="issuer",
        )
    return replace(endpoints, documents=documents)


def discover(target: Target, timeout: float = 5.0) -> Endpoints:
    """The target's endpoints: discovered through ``discovery_url``, overrides applied."""
    endpoints = discover_url(target.discovery_url, target.issuer, timeout)
    overrides: dict[str, Any] = target.endpoints  # URLs by field name (the loader checked them)
    return replace(endpoints, **overrides) if overrides else endpoints
