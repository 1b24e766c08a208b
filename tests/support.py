"""Test helpers shared across test folders (importable because pytest puts
``tests/`` on ``sys.path`` for the root ``conftest.py``)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import uvicorn

from tokenslo.lab.config import LabConfig, load_lab_config
from tokenslo.prometheus.process import free_port

REPO = Path(__file__).resolve().parents[1]
LAB_PORTS = ("idp", "gateway", "webhook", "prometheus", "alertmanager")


def free_ports_lab_config(**overrides) -> LabConfig:
    """The default lab config on free ports with the repo's SLOs, so labs of
    parallel test modules (and a developer's own lab on the default ports) never collide."""
    config = replace(load_lab_config(), slo_paths=(str(REPO / "slo"),), **overrides)
    return config.with_ports(**{name: free_port() for name in LAB_PORTS})


class ServedApp:
    """uvicorn serving an ASGI ``app`` in a daemon thread of the test process, on loopback.

    Lifespan is on so apps that start background work at start-up (the gateway's
    revocation poller, fault sweepers) behave as they do under ``python -m``.
    """

    def __init__(self, app, port: int | None = None, **options):
        """``options``: more ``uvicorn.Config`` settings (the lab's limits, for instance)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            **options,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 15.0) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
