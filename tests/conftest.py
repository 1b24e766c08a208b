"""Shared fixtures. Anything that needs Prometheus starts the real binary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import free_ports_lab_config, lab_up_on_free_ports
from tokenslo.prometheus.process import ManagedProcess, start_alertmanager, start_prometheus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start real Prometheus servers for a test; every one is stopped by PID afterwards."""
    started: list[ManagedProcess] = []

    def start(config: dict, **kwargs) -> ManagedProcess:
        proc = start_prometheus(config, tmp_path / f"prometheus-{len(started)}", **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    started: list[ManagedProcess] = []

    def start(config: dict, **kwargs) -> ManagedProcess:
        proc = start_alertmanager(config, tmp_path / f"alertmanager-{len(started)}", **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def lab_config(tmp_path_factory: pytest.TempPathFactory):
    """The config of the module's ``lab``; test folders override it to add to the lab."""
    return free_ports_lab_config()


@pytest.fixture(scope="module")
def lab(lab_config, tmp_path_factory: pytest.TempPathFactory):
    """One real lab (IdP, gateway, Prometheus, Alertmanager, webhook) per test module,
    always brought down by PID, even when start-up fails half-way."""
    from tokenslo.lab.orchestrator import lab_down

    state_dir = tmp_path_factory.mktemp("lab") / "state"
    try:
        yield lab_up_on_free_ports(lab_config, state_dir)[0]
    finally:
        lab_down(state_dir)
