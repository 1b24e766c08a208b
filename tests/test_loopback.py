"""What counts as this machine for the lab, the proxy and the Prometheus client."""

from __future__ import annotations

import pytest

from tokenslo.loopback import is_loopback


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.5.6.7", True),  # all of 127.0.0.0/8
        ("::1", True),
        ("0.0.0.0", False),  # every interface, not loopback
        ("10.0.0.1", False),
        ("[::1]", False),  # brackets are URL syntax, stripped by the caller
        ("prometheus.example", False),  # names are not resolved
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts(host, expected):
    assert is_loopback(host) is expected
