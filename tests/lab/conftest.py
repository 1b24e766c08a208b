"""Shared lab fixtures.

``serve_app`` runs any ASGI app under a real uvicorn (in a thread, loopback,
free port) for real-HTTP tests. ``lab`` brings a whole lab up once per module
on free ports in a temporary state dir and always brings it down. ``idp`` is the
admin client of the module's ``lab`` IdP, ending every token profile after each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import ServedApp, free_ports_lab_config, wait_until
from tokenslo.lab.config import LabConfig
from tokenslo.lab.faults.client import LabAdmin
from tokenslo.prometheus.process import pid_alive


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


@pytest.fixture
def idp(lab) -> Iterator[LabAdmin]:
    """The admin API of the module's lab IdP; no token profile outlives the test."""
    admin = LabAdmin(lab.idp_url, lab.admin_secret)
    yield admin
    admin.clear_token_profile()


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., object]:
    """``wait_until(check, timeout)`` for tests (conftest modules are not importable)."""
    return wait_until


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
    return free_ports_lab_config(extra_rule_files=(str(rules),))


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
def lab_config(tmp_path_factory: pytest.TempPathFactory) -> LabConfig:
    """Lab tests also get the always-firing alert (proves Alertmanager → webhook)."""
    return free_lab_config(tmp_path_factory.mktemp("lab-rules"))
