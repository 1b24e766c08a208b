"""Test helpers shared across test folders (importable because pytest puts
``tests/`` on ``sys.path`` for the root ``conftest.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import requests
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

    def __init__(self, app, port: int | None = None):
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


def alias_bomb(levels: int = 7, fan_out: int = 9) -> str:
    """A "billion laughs" YAML file (~260 bytes at 7 levels): ``fan_out ** levels`` strings
    once aliases are expanded, which a copying loader pays for in time and memory."""
    names = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['x'] * fan_out)}]"]
    for level in range(1, levels):
        prev, name = names[level - 1], names[level]
        lines.append(f"{name}: &{name} [{','.join([f'*{prev}'] * fan_out)}]")
    return "\n".join(lines) + "\n"


def deep_yaml(depth: int = 5000) -> str:
    """A value nested ``depth`` flow sequences deep (two bytes per level)."""
    return "a: " + "[" * depth + "]" * depth + "\n"


def wait_until(check: Callable[[], object], timeout: float, interval: float = 0.25) -> object:
    """Poll ``check`` until it returns something truthy; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, KeyError, IndexError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last result: {last!r}")
