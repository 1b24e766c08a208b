"""Header rules of the fault proxy (pure functions, RFC 9110 §7.6.1)."""

from __future__ import annotations

from tokenslo.proxy.app import is_control_path
from tokenslo.proxy.headers import body_framing, request_headers, response_headers


def test_connection_named_headers_and_classic_hop_by_hop_are_dropped():
    headers = [
        (b"Connection", b"Keep-Alive, X-Hop-A ,x-hop-b"),
        (b"Keep-Alive", b"timeout=5"),
        (b"X-Hop-A", b"1"),
        (b"X-HOP-B", b"2"),
        (b"TE", b"trailers"),
        (b"Upgrade", b"h2c"),
        (b"Proxy-Authorization", b"Basic x"),
        (b"Authorization", b"Bearer end-to-end"),
        (b"Content-Type", b"application/json"),
    ]
    assert response_headers(headers) == [
        (b"authorization", b"Bearer end-to-end"),
        (b"content-type", b"application/json"),
    ]


def test_request_headers_replace_host_and_extend_forwarded_for():
    out = request_headers(
        [
            (b"host", b"proxy:9480"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"x-forwarded-proto", b"https"),
            (b"content-length", b"12"),
        ],
        client_ip="127.0.0.1",
        scheme="http",
    )
    assert (b"host", b"proxy:9480") not in out
    assert (b"x-forwarded-for", b"10.0.0.1, 127.0.0.1") in out
    assert (b"x-forwarded-proto", b"http") in out
    assert (b"x-forwarded-host", b"proxy:9480") in out
    assert (b"content-length", b"12") in out


def test_an_existing_forwarded_host_is_kept():
    out = request_headers(
        [(b"host", b"inner"), (b"x-forwarded-host", b"outer.example")],
        client_ip=None,
        scheme="https",
    )
    assert [v for n, v in out if n == b"x-forwarded-host"] == [b"outer.example"]
    assert not any(n == b"x-forwarded-for" for n, _ in out)


def test_body_framing_follows_rfc9112():
    assert body_framing([(b"Content-Length", b"3")]) == "length"
    assert (
        body_framing([(b"transfer-encoding", b"chunked"), (b"content-length", b"3")]) == "chunked"
    )
    assert body_framing([(b"accept", b"*/*")]) == "none"


def test_only_the_proxy_own_paths_are_answered_locally():
    for path in ("/admin/faults", "/admin/faults/abc", "/admin/clock", "/-/metrics", "/-/healthz"):
        assert is_control_path(path)
    for path in ("/admin/keys/rotate", "/admin/faultsx", "/metrics", "/healthz", "/token"):
        assert not is_control_path(path)
