"""Whether a host name or address is this machine: the lab and the proxy listen only
there unless told otherwise, and the Prometheus client skips compression there."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """``localhost``, or an address in 127.0.0.0/8 or ``::1`` (no brackets); not a name
    that merely resolves to one, as nothing here resolves names."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
