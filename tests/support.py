"""Test helpers shared across test folders (importable because pytest puts
``tests/`` on ``sys.path`` for the root ``conftest.py``)."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import uvicorn

from tokenslo.errors import InputError, UnavailableError
from tokenslo.lab.config import LabConfig, load_lab_config
from tokenslo.prometheus.process import free_port

REPO = Path(__file__).resolve().parents[1]


def free_ports_lab_config(**overrides) -> LabConfig:
    """The default lab config on free ports with the repo's SLOs, so labs of
    parallel test modules (and a developer's own lab on the default ports) never collide."""
    config = replace(load_lab_config(), slo_paths=(str(REPO / "slo"),), **overrides)
    return with_free_ports(config)


def with_free_ports(config: LabConfig) -> LabConfig:
    """``config`` with every port it names (the prober's included) moved to a free one."""
    return config.with_ports(**{key: free_port() for key, _port in config.ports.items()})


def lab_up_on_free_ports(config: LabConfig, state_dir: Path, attempts: int = 3):
    """``lab_up`` that survives a picked port being taken before the lab binds it.

    Ports are picked free long before the lab binds them (seconds: rules are checked
    first), and another test or program may take one in between. ``lab up`` then fails
    (port in use, or a component that could not bind) having stopped what it started;
    if one of the ports is now busy it was not ours, so the lab starts again on fresh
    ones. Returns ``(state, config)``: the config the lab really runs with.
    """
    from tokenslo.lab.orchestrator import lab_up, port_busy

    attempt = 1
    while True:
        try:
            return lab_up(config, state_dir), config
        except (InputError, UnavailableError):
            bound = [port for key, port in config.ports.items() if key != "prober"]
            if attempt >= attempts or not any(port_busy(port) for port in bound):
                raise
        config = with_free_ports(config)
        attempt += 1


def lab_config_file(config: LabConfig, path: Path, **extra) -> Path:
    """``config``'s ports (plus ``extra`` keys) as a ``lab up --config`` file: a CLI
    ``lab up`` in a test always names its ports, so it can never start a lab on the
    default ones (a developer's own lab, or another test's)."""
    path.write_text(json.dumps({"ports": dict(config.ports.items()), **extra}))  # JSON is YAML
    return path


def lab_secrets(state_dir: Path) -> list[str]:
    """Every secret a lab in ``state_dir`` used: client secrets, the admin secret and the
    IdP's private key material (files the lab leaves in its state dir)."""
    from tokenslo.lab.orchestrator import ADMIN_SECRET_FILE, CREDENTIALS_FILE, read_credentials

    secrets = [*read_credentials(state_dir / CREDENTIALS_FILE).values()]
    secrets.append((state_dir / ADMIN_SECRET_FILE).read_text(encoding="utf-8").strip())
    keys = (state_dir / "idp-keys.json").read_text(encoding="utf-8")
    secrets += re.findall(r'"(?:d|p|q|dp|dq|qi|k)"\s*:\s*"([^"]{20,})"', keys)
    assert len(secrets) > 5, "the lab's secrets were not found"
    return secrets


def assert_no_secrets(files: list[Path], secrets: list[str]) -> int:
    """No file holds any 20-character piece of any secret, nor a JWT; returns how many
    files were scanned (so a caller can check the scan saw something)."""
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in secrets:
            for i in range(0, max(1, len(secret) - 20), 7):
                assert secret[i : i + 20] not in text, f"secret material in {path}"
        assert "eyJ" not in text, f"a JWT-shaped string in {path}"
    return len(files)


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
