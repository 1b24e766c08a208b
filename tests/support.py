"""Test helpers shared across test folders (importable because pytest puts
``tests/`` on ``sys.path`` for the root ``conftest.py``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import uvicorn

from tokenslo.errors import InputError, UnavailableError
from tokenslo.lab.config import LabConfig, load_lab_config
from tokenslo.prometheus.process import free_port, stop_pid

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
    from tokenslo.lab.orchestrator import lab_up
    from tokenslo.lab.ports import port_busy

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
    from tokenslo.lab.credentials import ADMIN_SECRET_FILE, CREDENTIALS_FILE, read_credentials

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


def write_target(path: Path, document: dict) -> Path:
    """A target description file (tokenslo/target/v1) for a test; secret files it names must
    be written by the test with mode 0600."""

    path.write_text(_dump_without_aliases({"version": "tokenslo/target/v1", **document}))
    return path


def _dump_without_aliases(document: dict) -> str:
    """YAML that repeats shared objects instead of writing anchors (tokenslo refuses them)."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data):  # noqa: ARG002 - PyYAML's hook
            return True

    return yaml.dump(document, Dumper=NoAliases, sort_keys=False)


def secret_file(path: Path, text: str) -> Path:
    """A 0600 secret file (tokenslo refuses group- or world-readable ones)."""
    path.write_text(text)
    path.chmod(0o600)
    return path


def target_variant(source: Path, dest: Path, **client_secrets: str) -> Path:
    """A copy of the target file ``source`` whose clients (by role) read their secret from
    the given environment variables instead: e.g. a wrong secret for role ``load``."""
    import yaml

    document = yaml.safe_load(source.read_text())
    for role, env_name in client_secrets.items():
        document["clients"][role]["secret"] = {"env": env_name}
    dest.write_text(_dump_without_aliases(document))
    return dest


class ProxyProcess:
    """``tokenslo proxy`` (the real CLI, a subprocess) in front of ``upstream`` on a free
    loopback port; ``start()`` waits until it answers ``/-/healthz``, ``stop()`` ends it
    by PID. Its output (``--log-level debug``) goes to ``log``."""

    def __init__(self, upstream: str, admin_secret: str, log: Path, timeout: float = 5.0):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstream, self.log, self.timeout = upstream, log, timeout
        self._secret = admin_secret
        self.proc: subprocess.Popen | None = None

    def start(self, wait: float = 20.0) -> ProxyProcess:
        argv = [
            sys.executable, "-m", "tokenslo", "proxy", "--upstream", self.upstream,
            "--listen", f"127.0.0.1:{self.port}", "--log-level", "debug",
            "--timeout", str(self.timeout),
        ]  # fmt: skip
        env = {**os.environ, "TOKENSLO_ADMIN_SECRET": self._secret}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait
        while not self._healthy():
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"proxy not healthy after {wait}s: {self.log.read_text()}")
            time.sleep(0.1)
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"proxy exited with {self.proc.returncode}: {self.log.read_text()}")
        try:
            return requests.get(self.url + "/-/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid, child=self.proc)


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


class JSONStub(BaseHTTPRequestHandler):
    """What every recorded-response HTTP stub shares: a JSON answer, and no request log
    in the test output. Subclasses decide the answer in ``do_GET``/``do_POST``."""

    def answer(self, status: int, text: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on a free loopback port in a thread; yields the base URL and
    stops the server when the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def backfill_openmetrics(
    data_dir: Path, metric: str, series: dict[str, list[tuple[float, float]]]
) -> None:
    """Write counter ``metric`` samples (label text → [(unix time, value)]) into ``data_dir``
    as TSDB blocks with the real ``promtool tsdb create-blocks-from openmetrics``:
    history at exact timestamps, no waiting for it to be scraped in real time."""
    from tokenslo.prometheus.process import run_promtool

    base = metric.removesuffix("_total")
    lines = [f"# HELP {base} {base}", f"# TYPE {base} counter"]
    for labels, samples in series.items():
        lines += [f"{metric}{{{labels}}} {v:.17g} {t:.3f}" for t, v in samples]
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / f"{base}.om"
    source.write_text("\n".join([*lines, "# EOF", ""]))
    done = run_promtool("tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir))
    assert done.returncode == 0, done.stdout + done.stderr
