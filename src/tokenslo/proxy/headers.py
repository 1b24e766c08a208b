"""Header rewriting for the reverse proxy (pure, so every rule is unit-tested).

RFC 9110 §7.6.1: hop-by-hop headers (``Connection`` and every header it names,
plus the classic list below) describe one connection, not the message, so a
proxy must not forward them. ``Host`` is dropped so the upstream sees its own
authority; the original one travels in ``X-Forwarded-Host``.
"""

from __future__ import annotations

from collections.abc import Iterable

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def _connection_tokens(headers: Iterable[Header]) -> set[bytes]:
    """Header names listed in ``Connection`` (they are hop-by-hop for this message too)."""
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return names


def strip_hop_by_hop(headers: Iterable[Header]) -> list[Header]:
    """The end-to-end headers only, names lower-cased, order kept."""
    headers = [(n.lower(), v) for n, v in headers]
    drop = HOP_BY_HOP | _connection_tokens(headers)
    return [(n, v) for n, v in headers if n not in drop]


def request_headers(
    headers: Iterable[Header], *, client_ip: str | None, scheme: str
) -> list[Header]:
    """Headers to send upstream: end-to-end ones minus ``Host``, plus ``X-Forwarded-*``.

    ``Content-Length`` is kept (the body is streamed unchanged); an existing
    ``X-Forwarded-For`` chain is extended rather than replaced.
    """
    kept = strip_hop_by_hop(headers)
    host = next((v for n, v in kept if n == b"host"), None)
    prior_for = [v for n, v in kept if n == b"x-forwarded-for"]
    out = [(n, v) for n, v in kept if n not in (b"host", b"x-forwarded-for", b"x-forwarded-proto")]
    chain = b", ".join(prior_for + ([client_ip.encode()] if client_ip else []))
    if chain:
        out.append((b"x-forwarded-for", chain))
    out.append((b"x-forwarded-proto", scheme.encode()))
    if host is not None and not any(n == b"x-forwarded-host" for n, _ in out):
        out.append((b"x-forwarded-host", host))
    return out


def response_headers(headers: Iterable[Header]) -> list[Header]:
    """Headers to send back to the client: end-to-end ones; the server adds its own framing."""
    return strip_hop_by_hop(headers)


def body_framing(headers: Iterable[Header]) -> str:
    """How the client framed its request body: ``"length"``, ``"chunked"`` or ``"none"``.

    A request without either header has no body (RFC 9112 §6.3), so nothing is
    streamed upstream and no ``Transfer-Encoding`` is invented for a GET.
    """
    names = {n.lower() for n, _ in headers}
    if b"transfer-encoding" in names:
        return "chunked"
    if b"content-length" in names:
        return "length"
    return "none"
