"""The lab's processes: start each component, wait until it is ready, stop it by PID.

Every component is recorded in ``state.json`` as soon as it is spawned; on a failure
or an interrupt half way up, what was started is stopped again. Stopping only ever
signals a PID whose kernel start time is still the recorded one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import requests

from tokenslo.errors import TokensloError, UnavailableError
from tokenslo.lab.admin_secret import ADMIN_SECRET_ENV
from tokenslo.lab.config import LabConfig
from tokenslo.lab.configs import SCRAPE_JOBS, alertmanager_config, prometheus_config
from tokenslo.lab.credentials import ADMIN_SECRET_FILE, WEBHOOK_SECRET_FILE, ensure_secret
from tokenslo.lab.ports import HOST
from tokenslo.lab.state import STATE_FILE, Component, LabState, write_state
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import (
    ManagedProcess,
    proc_start_time,
    spawn,
    start_alertmanager,
    start_prometheus,
    stop_pid,
)
from tokenslo.signals import interrupts_deferred, interrupts_ignored
from tokenslo.waiting import wait_until

log = logging.getLogger("tokenslo.lab")

# ``down`` stops in reverse (Prometheus first, so it never scrapes a dead target), and
# ``status`` lists in this order; ``start_all`` has its own.
ORDER = ("webhook", "idp", "gateway", "alertmanager", "prometheus")
HEALTH_PATHS = {
    "webhook": "/healthz",
    "idp": "/healthz",
    "gateway": "/healthz",
    "alertmanager": "/-/healthy",
    "prometheus": "/-/healthy",
}
# Prometheus answers /-/healthy before its config (and rules) are loaded; /-/ready after.
READY_PATHS = {**HEALTH_PATHS, "alertmanager": "/-/ready", "prometheus": "/-/ready"}
RESEND_DELAY = "2s"


def _spawn(
    name: str, argv: list[str], state_dir: Path, url: str, env: dict[str, str]
) -> ManagedProcess:
    """A lab component, logging to ``logs/<name>.log``; it outlives the CLI that started it."""
    logs = state_dir / "logs"
    logs.mkdir(exist_ok=True)
    return spawn(name, argv, state_dir, url, log_path=logs / f"{name}.log", env=env)


def _python_service(
    name: str, module: str, args: list[str], state_dir: Path, port: int
) -> ManagedProcess:
    """A lab service as ``python -m``; secrets reach it as file paths in ``args``, never
    in the environment (which every child inherits and ``/proc/PID/environ`` shows)."""
    env = dict(os.environ)
    env.pop(ADMIN_SECRET_ENV, None)
    argv = [sys.executable, "-m", module, *args]
    return _spawn(name, argv, state_dir, f"http://{HOST}:{port}", env)


def _component(name: str, managed: ManagedProcess, port: int) -> Component:
    return Component(
        name=name,
        pid=managed.pid,
        start_time=proc_start_time(managed.pid),
        port=port,
        url=managed.url,
        health_url=managed.url + HEALTH_PATHS[name],
        log=str(managed.log_path),
    )


def start_all(config: LabConfig, state: LabState, secret: str, rules: dict[str, str]) -> None:
    """Start every component, recording each in ``state.json`` as soon as it is spawned; on
    any failure or interrupt, stop what was started and re-raise.

    Prometheus and Alertmanager start first, beside the webhook and the IdP: Prometheus
    applies its scrape and Alertmanager targets only some 5 s after it starts, and the
    Python services' start-up fits in that wait instead of preceding it. The gateway
    waits for the IdP, whose keys it fetches at once."""
    started: dict[str, ManagedProcess] = {}
    state_dir = state.state_dir
    ports = config.ports

    def launch(name: str, start: Callable[[], ManagedProcess], port: int) -> ManagedProcess:
        # A stop signal between the spawn and the record would orphan the process:
        # the clean-up stops only what ``started`` holds.
        with interrupts_deferred():
            managed = start()
            started[name] = managed
            state.components[name] = _component(name, managed, port)
            write_state(state)
        return managed

    def ready(name: str) -> None:
        managed = started[name]
        managed.wait_ready(READY_PATHS[name], timeout=config.startup_timeout)
        log.info("lab: %s ready at %s (pid %d)", name, managed.url, managed.pid)

    def python_service(name: str, port: int) -> None:
        args = ["--config", str(state_dir / f"{name}.yaml")]
        args += ["--admin-secret-file", str(state_dir / ADMIN_SECRET_FILE)]
        module = f"tokenslo.lab.{name}"
        launch(name, lambda: _python_service(name, module, args, state_dir, port), port)

    try:
        webhook_secret = ensure_secret(state_dir, WEBHOOK_SECRET_FILE)
        launch(
            "alertmanager",
            lambda: start_alertmanager(
                alertmanager_config(config, webhook_secret),
                state_dir / "alertmanager",
                ports.alertmanager,
                wait=False,
            ),
            ports.alertmanager,
        )
        prom = launch(
            "prometheus",
            lambda: start_prometheus(
                prometheus_config(config),
                state_dir / "prometheus",
                ports.prometheus,
                rule_files=rules,
                # The default (1m) would delay a lost first notification by a minute.
                extra_args=[f"--rules.alert.resend-delay={RESEND_DELAY}"],
                wait=False,
            ),
            ports.prometheus,
        )
        webhook_args = [
            *("--port", str(ports.webhook), "--state-dir", str(state_dir)),
            *("--secret-file", str(webhook_secret)),
        ]
        launch(
            "webhook",
            lambda: _python_service(
                "webhook", "tokenslo.lab.webhook", webhook_args, state_dir, ports.webhook
            ),
            ports.webhook,
        )
        python_service("idp", ports.idp)
        ready("idp")
        python_service("gateway", ports.gateway)
        for name in ("webhook", "gateway", "alertmanager", "prometheus"):
            ready(name)
        wait_wired(prom.url, [SCRAPE_JOBS[n] for n in ("idp", "gateway")], config.startup_timeout)
        for managed in started.values():
            if managed.proc.poll() is not None:
                raise UnavailableError(
                    f"{managed.name} exited (code {managed.proc.returncode}); "
                    f"see {managed.log_path}"
                )
    except BaseException:
        with interrupts_ignored():  # a second SIGTERM must not cut the clean-up short
            for managed in reversed(started.values()):
                if managed.proc.poll() is None:  # never signal a PID we already reaped
                    managed.stop()
            (state_dir / STATE_FILE).unlink(missing_ok=True)
        raise


def wait_wired(prometheus_url: str, jobs: list[str], timeout: float) -> None:
    """Wait until Prometheus scrapes ``jobs`` and knows its Alertmanager.

    Prometheus is ready before service discovery has run (up to ~5 s), and an
    alert fired before then never reaches Alertmanager; so ``up`` waits for both.
    """
    missing: list[str] = list(jobs)

    def wired() -> bool:
        nonlocal missing
        missing = _not_wired(prometheus_url, jobs)
        return not missing

    try:
        wait_until(wired, timeout, 0.25, "Prometheus to scrape the lab")
    except TimeoutError:
        raise UnavailableError(
            f"Prometheus not scraping {', '.join(missing)} after {timeout:.0f}s"
        ) from None


def _not_wired(prometheus_url: str, jobs: list[str]) -> list[str]:
    """The jobs Prometheus does not scrape successfully yet, plus ``alertmanager`` while it
    knows none; ``prometheus API`` while it does not answer."""
    try:
        with PromClient(prometheus_url, timeout=2) as prom:
            health = {t["labels"].get("job"): t.get("health") for t in prom.targets()}
            missing = [job for job in jobs if health.get(job) != "up"]
            if not prom.alertmanagers():
                missing.append("alertmanager")
    except (TokensloError, KeyError, TypeError, AttributeError):
        return ["prometheus API"]
    return missing


def stop_components(state: LabState) -> list[str]:
    stopped = []
    for name in reversed(ORDER):
        component = state.components.get(name)
        if component is None or not component.is_ours_and_alive():
            continue
        stop_pid(component.pid, timeout=10)
        _reap(component.pid)
        stopped.append(name)
    return stopped


def _reap(pid: int) -> None:
    """Collect the exit status when the process was our own child (tests run the lab in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
