"""Shared fixtures. Anything that needs Prometheus starts the real binary."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
