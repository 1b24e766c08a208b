"""Keeping discovering clients behind the proxy, and a bounded ``path`` label.

Real IdPs publish absolute URLs in their metadata (RFC 8414, OpenID Connect
Discovery). A client that fetched the metadata through the proxy would follow
them straight to the IdP and around every injected fault, so the proxy rewrites
each URL on the upstream's origin to its own origin, in discovery documents and in
``Location`` headers. ``issuer`` keeps the upstream's value: tokens carry it and
clients compare the two.

Everything here is pure (bytes and strings in, bytes and strings out) so each rule is
unit-tested; ``forward.py`` decides when to call it.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tokenslo.lab.asgi import Scope

WELL_KNOWN = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
OTHER = "other"
MAX_DOCUMENT_BYTES = 1024 * 1024  # larger "metadata" is passed through untouched
MAX_LEARNED_PATHS = 64
MAX_LABEL_PATH = 256
KEPT_FIELDS = frozenset({"issuer"})
DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(?::[0-9]{1,5})?$")


def discovery_name(path: str) -> str | None:
    """The well-known document ``path`` asks for, or None.

    Both placements are recognised: RFC 8414 §3 inserts the well-known segment before
    the issuer's path (``/.well-known/oauth-authorization-server/tenant``), OpenID
    Connect Discovery appends it (``/tenant/.well-known/openid-configuration``).
    """
    if "/.well-known/" not in path:  # the hot path: one substring test
        return None
    for name in WELL_KNOWN:
        if path == name or path.startswith(name + "/") or path.endswith(name):
            return name
    return None


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


@dataclass(frozen=True)
class Upstream:
    """The upstream's origin and path prefix, as URLs in its documents are compared."""

    origin: tuple[str, str, int]
    prefix: str  # the --upstream URL's path without a trailing slash ("" at the root)

    @classmethod
    def parse(cls, url: str) -> Upstream:
        origin = _origin(url)
        if origin is None:
            raise ValueError(f"not an http(s) URL: {url!r}")
        return cls(origin, urlsplit(url).path.rstrip("/"))

    def proxy_path(self, url: str) -> str | None:
        """The path (query and fragment kept) at which the proxy serves ``url``, if it does."""
        if _origin(url) != self.origin:
            return None
        parts = urlsplit(url)
        path = parts.path or "/"
        if self.prefix:
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                return None  # on the upstream's host but outside what the proxy forwards
            path = path[len(self.prefix) :] or "/"
        tail = (f"?{parts.query}" if parts.query else "") + (
            f"#{parts.fragment}" if parts.fragment else ""
        )
        return path + tail


def proxy_origin(scope: Scope) -> str:
    """The origin the client used to reach the proxy: its ``Host`` when well-formed,
    else the address the proxy listens on (never a header value that is not a host)."""
    scheme = scope.get("scheme", "http")
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = value.decode("latin-1")
            if _HOST.match(host):
                return f"{scheme}://{host}"
            break
    server = scope.get("server") or ("127.0.0.1", DEFAULT_PORTS.get(scheme, 80))
    host = f"[{server[0]}]" if ":" in server[0] else server[0]
    return f"{scheme}://{host}:{server[1]}"


def rewrite_document(
    document: Mapping[str, Any], upstream: Upstream, origin: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """``document`` with every upstream URL moved to ``origin`` (``issuer`` kept), and the
    proxy paths of the moved URLs, each with the metadata field that named it first
    (``/token`` → ``token_endpoint``: the metrics' ``path`` and ``endpoint`` labels)."""
    moved: dict[str, str] = {}

    def walk(value: Any, field: str) -> Any:
        if isinstance(value, str):
            path = upstream.proxy_path(value) if "://" in value else None
            if path is None:
                return value
            moved.setdefault(path.split("?", 1)[0].split("#", 1)[0], field)
            return origin + path
        if isinstance(value, dict):
            return {k: walk(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, field) for v in value]
        return value

    out = {k: (v if k in KEPT_FIELDS else walk(v, str(k))) for k, v in document.items()}
    return out, moved


def decode_body(body: bytes, encoding: str) -> bytes | None:
    """``body`` without its Content-Encoding (gzip, deflate, identity), None if unknown."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, wbits=47)  # gzip or zlib header
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, wbits=-15)  # raw deflate, as some servers send
    except zlib.error:
        return None
    return None


def rewrite_body(
    body: bytes, encoding: str, upstream: Upstream, origin: str
) -> tuple[bytes, dict[str, str]] | None:
    """The rewritten (uncompressed) document and the moved paths; None when ``body``
    is not a JSON object or nothing in it points at the upstream."""
    plain = decode_body(body, encoding)
    if plain is None:
        return None
    try:
        document = json.loads(plain)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    rewritten, moved = rewrite_document(document, upstream, origin)
    if not moved:
        return None
    return json.dumps(rewritten, separators=(",", ":")).encode(), moved


def rewrite_location(
    headers: list[tuple[bytes, bytes]], upstream: Upstream, origin: str
) -> list[tuple[bytes, bytes]]:
    """``Location`` headers pointing at the upstream moved to ``origin``; others kept."""
    out = []
    for name, value in headers:
        if name == b"location":
            path = upstream.proxy_path(value.decode("latin-1"))
            if path is not None:
                value = (origin + path).encode("latin-1")
        out.append((name, value))
    return out


DISCOVERY = "discovery"  # the ``endpoint`` label of the two well-known documents
_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class PathLabels:
    """The bounded set of values of the proxy metrics' ``path`` and ``endpoint`` labels.

    An unauthenticated caller chooses the request path, so a label per path would let
    anyone grow the proxy's series without bound. The ``path`` label is the request path
    only for the two well-known discovery paths (any suffixed or prefixed form counts as
    its well-known name) and for the endpoint paths learned from the upstream's
    discovery documents (at most ``MAX_LEARNED_PATHS``); everything else is ``other``.
    The ``endpoint`` label names the metadata field a learned path came from
    (``token_endpoint``, ``jwks_uri``, …; ``discovery`` for the documents), so SLOs over
    the proxy read the same for every provider's paths.
    """

    def __init__(self, limit: int = MAX_LEARNED_PATHS):
        self.limit = limit
        self._known: dict[str, str] = {name: name for name in WELL_KNOWN}
        self._fields: dict[str, str] = {name: DISCOVERY for name in WELL_KNOWN}
        self._fields[OTHER] = OTHER

    def label(self, path: str) -> str:
        known = self._known.get(path)
        if known is not None:
            return known
        return discovery_name(path) or OTHER

    def endpoint(self, label: str) -> str:
        """The ``endpoint`` label of a ``path`` label value."""
        return self._fields.get(label, OTHER)

    def learn(self, paths: Iterable[str] | Mapping[str, str]) -> list[str]:
        """Add endpoint paths (from a discovery document, with the field that named each
        when known); returns the new ones."""
        fields = paths if isinstance(paths, Mapping) else {}
        added = []
        for path in paths:
            if path in self._known or len(self._known) >= self.limit + len(WELL_KNOWN):
                continue
            if path.startswith("/") and len(path) <= MAX_LABEL_PATH and path.isprintable():
                self._known[path] = path
                field = fields.get(path, "")
                self._fields[path] = field if _FIELD.match(field) else OTHER
                added.append(path)
        return added

    def values(self) -> list[str]:
        return [*self._known, OTHER]
