"""Where the lab listens: loopback, on ports that must be free before ``lab up`` starts.

A busy port is bad input (exit 2) found before any process starts, naming the
config key to change, rather than a component that dies on ``bind`` half way up.
"""

from __future__ import annotations

import socket

from tokenslo.errors import InputError
from tokenslo.lab.config import LabConfig
from tokenslo.prometheus.process import port_in_use

HOST = "127.0.0.1"


def port_busy(port: int) -> bool:
    """Someone listens on, or holds, ``port`` on loopback."""
    if port_in_use(port):
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def check_ports(config: LabConfig) -> None:
    """Every port the lab will listen on must be free (the prober's is scraped, not bound)."""
    for key, port in config.ports.items():
        if key != "prober" and port_busy(port):
            raise InputError(
                f"port {port} is already in use; free it or set ports.{key} "
                "to another port in the lab config (--config)",
                file=config.source if config.source != "<defaults>" else None,
                field=f"ports.{key}",
            )
