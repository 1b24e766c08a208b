"""Shared lab fixtures.

``serve_app`` runs any ASGI app under a real uvicorn (in a thread, loopback,
free port) for real-HTTP tests. ``lab`` brings a whole lab up once per module
on free ports in a temporary state dir and always brings it down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
import uvicorn

from tokenslo.lab.config import LabConfig, load_lab_config
from tokenslo.lab.orchestrator import LabState, lab_down, lab_up
from tokenslo.prometheus.process import free_port, pid_alive


class ServedApp:
    """A uvicorn server running ``app`` in a daemon thread of the test process."""

    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 10.0) -> ServedApp:
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


@pytest.fixture
def serve_app() -> Iterator[Callable[..., ServedApp]]:
    """``serve_app(app)`` → a started ``ServedApp``; all are stopped after the test."""
    served: list[ServedApp] = []

    def start(app, port: int | None = None) -> ServedApp:
        server = ServedApp(app, port).start()
        served.append(server)
        return server

    yield start
    for server in served:
        server.stop()


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


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., object]:
    """``wait_until(check, timeout)`` for tests (conftest modules are not importable)."""
    return wait_until


REPO = Path(__file__).resolve().parents[2]
ALWAYS_FIRING_RULES = """\
groups:
  - name: tokenslo-lab-test
    interval: 1s
    rules:
      - alert: TokensloLabAlwaysFiring
        expr: vector(1)
        labels: {severity: test}
        annotations: {summary: proves Alertmanager reaches the webhook receiver}
"""


def free_lab_config(tmp: Path) -> LabConfig:
    """Default lab config on free ports, the repo's SLOs and an always-firing test alert."""
    rules = tmp / "always-firing.yml"
    rules.write_text(ALWAYS_FIRING_RULES)
    config = replace(
        load_lab_config(),
        slo_paths=(str(REPO / "slo"),),
        extra_rule_files=(str(rules),),
    )
    ports = {
        key: free_port() for key in ("idp", "gateway", "webhook", "prometheus", "alertmanager")
    }
    return config.with_ports(**ports)


def lab_pids(state_dir: Path) -> set[int]:
    """PIDs of live processes whose command line names ``state_dir`` (i.e. this lab's)."""
    needle = str(state_dir).encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and pid_alive(int(entry.name)):
            pids.add(int(entry.name))
    return pids


@pytest.fixture(name="free_lab_config")
def free_lab_config_fixture() -> Callable[[Path], LabConfig]:
    return free_lab_config


@pytest.fixture(name="lab_pids")
def lab_pids_fixture() -> Callable[[Path], set[int]]:
    return lab_pids


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """One real lab per test module; always brought down, even when start-up fails half-way."""
    tmp = tmp_path_factory.mktemp("lab")
    state_dir = tmp / "state"
    try:
        yield lab_up(free_lab_config(tmp), state_dir)
    finally:
        lab_down(state_dir)
