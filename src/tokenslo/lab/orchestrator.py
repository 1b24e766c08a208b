"""``lab up|down|status``: start the lab's processes, record them, stop exactly those.

Processes are recorded in ``state.json`` with their PID and the kernel's start
time of that PID (``/proc/<pid>/stat``), so ``down`` never signals a recycled
PID that now belongs to something else. Builders of the generated configs are
pure functions; the I/O (files, subprocesses, HTTP health checks) is below them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from tokenslo.core.durations import format_duration
from tokenslo.errors import InputError, TokensloError, UnavailableError
from tokenslo.files import write_atomically
from tokenslo.lab import target_file
from tokenslo.lab.config import LabConfig
from tokenslo.lab.faults.client import LabAdmin
from tokenslo.lab.idp.clients import hash_secret
from tokenslo.prometheus.client import PromClient
from tokenslo.prometheus.process import (
    ManagedProcess,
    pid_alive,
    port_in_use,
    run_promtool,
    spawn,
    start_alertmanager,
    start_prometheus,
    stop_pid,
)
from tokenslo.signals import interrupts_ignored
from tokenslo.spec.yamlpos import read_text
from tokenslo.target.credentials import secrets_in
from tokenslo.waiting import wait_until

log = logging.getLogger("tokenslo.lab")

HOST = "127.0.0.1"
STATE_FILE = "state.json"
ADMIN_SECRET_FILE = "admin-secret"
WEBHOOK_SECRET_FILE = "webhook-secret"  # Alertmanager's bearer credential for the webhook
CREDENTIALS_FILE = "credentials.yaml"
CLIENTS_FILE = "clients.yaml"
NOTIFICATIONS_FILE = "notifications.jsonl"
ADMIN_SECRET_ENV = "TOKENSLO_ADMIN_SECRET"
# Start order; ``down`` stops in reverse (Prometheus first, so it never scrapes a dead target).
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
SCRAPE_JOBS = {
    "idp": "idp",
    "gateway": "gateway",
    "webhook": "tokenslo-webhook",
    "prober": "prober",
}
RULES_FILE = "tokenslo-slo-rules.yml"
RESEND_DELAY = "2s"


@dataclass(frozen=True)
class ClientSpec:
    client_id: str
    grant_types: tuple[str, ...] = ("client_credentials",)
    token_format: str = "jwt"
    scopes: tuple[str, ...] = ("api.read",)
    introspect: bool = True


# The lab's clients (the lab contract); secrets are generated once per state dir.
CLIENTS = (
    ClientSpec(
        "loadtest", ("client_credentials", "refresh_token"), scopes=("api.read", "api.write")
    ),
    ClientSpec("gateway", scopes=()),
    ClientSpec("prober", ("client_credentials", "refresh_token")),
    ClientSpec("opaque-client", token_format="opaque", introspect=False),
)


# -- state --------------------------------------------------------------------


@dataclass
class Component:
    name: str
    pid: int
    start_time: int | None
    port: int
    url: str
    health_url: str
    log: str

    def is_ours_and_alive(self) -> bool:
        """Alive, and the PID still belongs to the process we started (not a recycled one)."""
        return pid_alive(self.pid) and proc_start_time(self.pid) == self.start_time


@dataclass
class LabState:
    state_dir: Path
    components: dict[str, Component]
    started_at: float
    admin_secret_file: Path
    credentials_file: Path
    notifications_file: Path
    issuer: str
    audience: str
    already_running: bool = False
    notes: list[str] = field(default_factory=list)
    # False while ``up`` is still starting components: the state names every process started
    # so far, so ``down`` finds them even if ``up`` was killed half way.
    complete: bool = True

    @property
    def urls(self) -> dict[str, str]:
        return {name: c.url for name, c in self.components.items()}

    def admin_secret(self) -> str:
        return self.admin_secret_file.read_text(encoding="utf-8").strip()

    def credentials(self) -> dict[str, str]:
        """client_id → plaintext secret."""
        return read_credentials(self.credentials_file)

    def admin(self, component: str) -> LabAdmin:
        """Admin client for ``idp`` or ``gateway``."""
        return LabAdmin(self.components[component].url, self.admin_secret())

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "issuer": self.issuer,
            "audience": self.audience,
            "admin_secret_file": str(self.admin_secret_file),
            "credentials_file": str(self.credentials_file),
            "notifications_file": str(self.notifications_file),
            "components": {name: asdict(c) for name, c in self.components.items()},
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, state_dir: Path, data: dict[str, Any]) -> LabState:
        return cls(
            state_dir=state_dir,
            components={n: Component(**c) for n, c in data["components"].items()},
            started_at=float(data["started_at"]),
            admin_secret_file=Path(data["admin_secret_file"]),
            credentials_file=Path(data["credentials_file"]),
            notifications_file=Path(data["notifications_file"]),
            issuer=data["issuer"],
            audience=data["audience"],
            complete=bool(data.get("complete", True)),
        )


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    alive: bool
    healthy: bool
    url: str

    @property
    def state(self) -> str:
        if not self.alive:
            return "down"
        return "healthy" if self.healthy else "unhealthy"


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def read_state(state_dir: Path, *, partial: bool = False) -> LabState | None:
    """The recorded lab; None when there is none, or (unless ``partial``) while ``up`` is
    still starting it or was killed half way: callers that need its URLs must not see a
    lab without all of its components. ``down`` and ``up`` itself read partial states."""
    path = Path(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = LabState.from_json(Path(state_dir), data)
        return state if partial or state.complete else None
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"corrupt lab state ({exc}); stop stray processes by hand", file=str(path)
        ) from None


def write_state(state: LabState) -> None:
    _atomic_write(state.state_dir / STATE_FILE, json.dumps(state.to_json(), indent=2) + "\n")


def write_target_file(state: LabState, config: LabConfig) -> Path:
    """The lab as a target (``target.yaml``): how every other component finds it."""
    path = state.state_dir / target_file.TARGET_FILE
    document = target_file.lab_target(
        urls=state.urls,
        issuer=state.issuer,
        state_dir=state.state_dir,
        credentials_file=state.credentials_file,
        admin_secret_file=state.admin_secret_file,
        slo_paths=[str(Path(p).resolve()) for p in config.slo_paths],
    )
    _atomic_write(path, target_file.render(document))
    return path


def _atomic_write(path: Path, text: str, mode: int = 0o644) -> None:
    """Lab files are 0644 (every component reads them) unless they hold secrets (0600)."""
    write_atomically(path, text, mode=mode)


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """One ``up``/``down`` at a time per state dir."""
    with open(state_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# -- secrets and generated configs (pure builders) -----------------------------


def ensure_admin_secret(state_dir: Path) -> Path:
    return ensure_secret(state_dir, ADMIN_SECRET_FILE)


def ensure_secret(state_dir: Path, name: str) -> Path:
    """A random secret in ``state_dir/name`` (0600), made once and then reused."""
    path = state_dir / name
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        _atomic_write(path, secrets.token_urlsafe(32) + "\n", mode=0o600)
    return path


def read_credentials(path: Path) -> dict[str, str]:
    """client_id → secret of the lab's credentials file (empty when there is none yet)."""
    if not path.exists():
        return {}
    found = secrets_in(read_text(path), str(path))
    found.pop("", None)  # the lab's file lists clients; a bare secret names none
    return found


def ensure_credentials(state_dir: Path) -> dict[str, str]:
    """Plaintext secrets of the lab clients, generated once (missing ones added), mode 0600."""
    path = state_dir / CREDENTIALS_FILE
    creds = read_credentials(path)
    missing = [c.client_id for c in CLIENTS if c.client_id not in creds]
    if missing or not path.exists():
        for client_id in missing:
            creds[client_id] = secrets.token_urlsafe(32)
        doc = {"clients": [{"client_id": k, "client_secret": v} for k, v in creds.items()]}
        header = "# tokenslo lab client credentials: plaintext, keep private (mode 0600)\n"
        _atomic_write(path, header + yaml.safe_dump(doc, sort_keys=False), mode=0o600)
    return creds


def clients_registry(creds: dict[str, str], audience: str) -> dict[str, Any]:
    """The IdP's client registry: secrets only as SHA-256 (see tokenslo.lab.idp.clients)."""
    return {
        "clients": [
            {
                "client_id": spec.client_id,
                "secret_sha256": hash_secret(creds[spec.client_id]),
                "scopes": list(spec.scopes),
                "audiences": [audience],
                "token_ttl": 300,
                "token_format": spec.token_format,
                "grant_types": list(spec.grant_types),
                "refresh_ttl": 3600,
                "introspect": spec.introspect,
            }
            for spec in CLIENTS
        ]
    }


def issuer_url(config: LabConfig) -> str:
    return f"http://{HOST}:{config.ports.idp}"


def idp_config(config: LabConfig, state_dir: Path) -> dict[str, Any]:
    return {
        **config.idp,
        "host": HOST,
        "port": config.ports.idp,
        "issuer": issuer_url(config),
        "keys_file": str(state_dir / "idp-keys.json"),
        "revocations_file": str(state_dir / "idp-revocations.json"),
        "clients_file": str(state_dir / CLIENTS_FILE),
    }


def gateway_config(config: LabConfig, state_dir: Path) -> dict[str, Any]:
    return {
        **config.gateway,
        "host": HOST,
        "port": config.ports.gateway,
        "issuer": issuer_url(config),
        "credentials_file": str(state_dir / CREDENTIALS_FILE),
    }


def gateway_audience(config: LabConfig) -> str:
    return str(config.gateway.get("audience", "api://lab"))


def prometheus_config(config: LabConfig) -> dict[str, Any]:
    """prometheus.yml: scrape the lab every ``scrape_interval``; alert via its Alertmanager."""
    interval = format_duration(config.scrape_interval)
    targets = {"idp": config.ports.idp, "gateway": config.ports.gateway}
    targets["webhook"] = config.ports.webhook
    if config.ports.prober is not None:
        targets["prober"] = config.ports.prober
    return {
        "global": {
            "scrape_interval": interval,
            # Must not exceed the interval; Prometheus refuses to start otherwise.
            "scrape_timeout": format_duration(min(config.scrape_interval, 10.0)),
            "evaluation_interval": format_duration(config.evaluation_interval),
        },
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{HOST}:{config.ports.alertmanager}"]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": SCRAPE_JOBS[name], "static_configs": [{"targets": [f"{HOST}:{port}"]}]}
            for name, port in targets.items()
        ],
    }


def alertmanager_config(
    config: LabConfig, webhook_secret_file: Path | None = None
) -> dict[str, Any]:
    """Route every alert, each in its own group, to the webhook receiver without delay.

    With ``webhook_secret_file`` Alertmanager authenticates to the webhook with it
    as a bearer credential (prometheus/common ``http_config.authorization``; the
    file is read by Alertmanager, the secret never enters its config).
    """
    webhook: dict[str, Any] = {
        "url": f"http://{HOST}:{config.ports.webhook}/alerts",
        "send_resolved": True,
    }
    if webhook_secret_file is not None:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": str(webhook_secret_file)}
        }
    return {
        "route": {
            "receiver": "tokenslo-webhook",
            "group_by": ["..."],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "24h",
        },
        "receivers": [
            {
                "name": "tokenslo-webhook",
                "webhook_configs": [webhook],
            }
        ],
    }


def check_pass_through(config: LabConfig, state_dir: Path) -> None:
    """Validate the IdP/gateway settings now, so bad input fails before anything starts."""
    from tokenslo.lab.gateway.config import config_from_dict
    from tokenslo.lab.idp.config import YamlDoc, parse_idp_config

    parse_idp_config(YamlDoc(data=idp_config(config, state_dir), lines={}, file=config.source))
    config_from_dict(gateway_config(config, state_dir), config.source)


def rule_files(config: LabConfig, notes: list[str]) -> dict[str, str]:
    """SLO rules (rendered by the rule generator) plus ``extra_rule_files`` as they are."""
    files: dict[str, str] = {}
    rendered = render_slo_rules(config, notes)
    if rendered:
        files[RULES_FILE] = rendered
    for index, name in enumerate(config.extra_rule_files):
        try:
            files[f"extra-{index}-{Path(name).name}"] = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read rule file: {exc.strerror}", file=name, field="extra_rule_files"
            ) from None
    return files


def check_rules(rules: dict[str, str], config: LabConfig, workdir: Path) -> None:
    """``promtool check rules`` before anything starts: bad rules are bad input (exit 2)."""
    if not rules:
        return
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in rules.items():
        path = workdir / name
        path.write_text(text, encoding="utf-8")
        result = run_promtool("check", "rules", str(path), timeout=60)
        if result.returncode != 0:
            detail = _promtool_error(result.stdout + result.stderr)
            source = _rule_source(name, config)
            raise InputError(f"invalid Prometheus rules: {detail}", file=source, field="rules")


def _promtool_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith(("Checking", "FAILED", "SUCCESS"))]
    return (errors or lines or ["promtool failed"])[0]


def _rule_source(name: str, config: LabConfig) -> str:
    if name == RULES_FILE:
        return ", ".join(config.slo_paths)
    index = int(name.split("-", 2)[1])
    return config.extra_rule_files[index]


def render_slo_rules(config: LabConfig, notes: list[str]) -> str | None:
    paths = [p for p in config.slo_paths if Path(p).exists()]
    for missing in sorted(set(config.slo_paths) - set(paths)):
        notes.append(f"SLO path {missing} not found; no rules from it")
    if not paths:
        return None
    try:
        from tokenslo.rules.generate import render_rules
        from tokenslo.spec.loader import load_paths
    except ImportError as exc:
        notes.append(f"rule generator unavailable ({exc}); Prometheus runs without SLO rules")
        return None
    slos = load_paths(paths)
    if not slos:
        notes.append(f"no SLOs in {', '.join(paths)}; Prometheus runs without SLO rules")
        return None
    rendered = render_rules(slos, fmt="prometheus", time_scale=config.rules_time_scale)
    return rendered if isinstance(rendered, str) else yaml.safe_dump(rendered, sort_keys=False)


# -- ports ----------------------------------------------------------------------


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


# -- processes ------------------------------------------------------------------


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


def _start_all(config: LabConfig, state: LabState, secret: str, rules: dict[str, str]) -> None:
    """Start every component in ``ORDER``, recording each in ``state.json`` as soon as it is
    spawned; on any failure or interrupt, stop what was started and re-raise."""
    started: list[ManagedProcess] = []
    state_dir = state.state_dir
    ports = config.ports

    def launch(name: str, managed: ManagedProcess, port: int) -> None:
        started.append(managed)
        state.components[name] = _component(name, managed, port)
        write_state(state)
        managed.wait_ready(READY_PATHS[name], timeout=config.startup_timeout)
        log.info("lab: %s ready at %s (pid %d)", name, managed.url, managed.pid)

    try:
        launch(
            "webhook",
            _python_service(
                "webhook",
                "tokenslo.lab.webhook",
                [
                    *("--port", str(ports.webhook), "--state-dir", str(state_dir)),
                    *("--secret-file", str(ensure_secret(state_dir, WEBHOOK_SECRET_FILE))),
                ],
                state_dir,
                ports.webhook,
            ),
            ports.webhook,
        )
        for name, port in (("idp", ports.idp), ("gateway", ports.gateway)):
            args = ["--config", str(state_dir / f"{name}.yaml")]
            args += ["--admin-secret-file", str(state_dir / ADMIN_SECRET_FILE)]
            module = f"tokenslo.lab.{name}"
            launch(name, _python_service(name, module, args, state_dir, port), port)
        am = start_alertmanager(
            alertmanager_config(config, state_dir / WEBHOOK_SECRET_FILE),
            state_dir / "alertmanager",
            ports.alertmanager,
            wait=False,
        )
        launch("alertmanager", am, ports.alertmanager)
        prom = start_prometheus(
            prometheus_config(config),
            state_dir / "prometheus",
            ports.prometheus,
            rule_files=rules,
            # The default (1m) would delay a lost first notification by a minute.
            extra_args=[f"--rules.alert.resend-delay={RESEND_DELAY}"],
            wait=False,
        )
        launch("prometheus", prom, ports.prometheus)
        wait_wired(prom.url, [SCRAPE_JOBS[n] for n in ("idp", "gateway")], config.startup_timeout)
        for managed in started:
            if managed.proc.poll() is not None:
                raise UnavailableError(
                    f"{managed.name} exited (code {managed.proc.returncode}); "
                    f"see {managed.log_path}"
                )
    except BaseException:
        with interrupts_ignored():  # a second SIGTERM must not cut the clean-up short
            for managed in reversed(started):
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


def _write_configs(config: LabConfig, state_dir: Path, creds: dict[str, str]) -> None:
    registry = clients_registry(creds, gateway_audience(config))
    _atomic_write(state_dir / CLIENTS_FILE, yaml.safe_dump(registry, sort_keys=False), mode=0o600)
    for name, data in (
        ("idp", idp_config(config, state_dir)),
        ("gateway", gateway_config(config, state_dir)),
    ):
        _atomic_write(state_dir / f"{name}.yaml", yaml.safe_dump(data, sort_keys=False))


def _running_state(state_dir: Path) -> LabState | None:
    """The recorded lab if every one of its processes is still ours and alive."""
    state = read_state(state_dir, partial=True)
    if state is None:
        return None
    if state.complete and all(c.is_ours_and_alive() for c in state.components.values()):
        return state
    _stop_components(state)  # a partial lab: stop what is left, then start afresh
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return None


def forget_history(state_dir: Path) -> None:
    """Delete an earlier lab's Prometheus TSDB and Alertmanager state before a start.

    A new lab must start with empty alert windows: series of an earlier lab on the same
    ports carry the same labels, so a load test run a minute before would still fill
    the (compressed) windows and dilute the errors a game day injects.
    """
    for stale in (state_dir / "prometheus" / "data", state_dir / "alertmanager" / "am-data"):
        shutil.rmtree(stale, ignore_errors=True)


def lab_up(config: LabConfig, state_dir: str | Path) -> LabState:
    """Start the lab (or return the running one, ``already_running=True``)."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    with _locked(state_dir):
        running = _running_state(state_dir)
        if running is not None:
            running.already_running = True
            return running
        check_ports(config)
        check_pass_through(config, state_dir)
        notes: list[str] = []
        rules = rule_files(config, notes)
        check_rules(rules, config, state_dir / "rules-check")
        forget_history(state_dir)
        secret_path = ensure_admin_secret(state_dir)
        creds = ensure_credentials(state_dir)
        _write_configs(config, state_dir, creds)
        secret = secret_path.read_text(encoding="utf-8").strip()
        state = LabState(
            state_dir=state_dir,
            components={},
            started_at=time.time(),
            admin_secret_file=secret_path,
            credentials_file=state_dir / CREDENTIALS_FILE,
            notifications_file=state_dir / NOTIFICATIONS_FILE,
            issuer=issuer_url(config),
            audience=gateway_audience(config),
            notes=notes,
            complete=False,
        )
        try:
            _start_all(config, state, secret, rules)
        except UnavailableError as exc:
            raise UnavailableError(
                f"lab up failed, everything started was stopped: {exc}"
            ) from None
        state.complete = True
        try:
            write_state(state)
            write_target_file(state, config)
        except BaseException:
            _stop_components(state)
            (state_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        return state


def _stop_components(state: LabState) -> list[str]:
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


def lab_down(state_dir: str | Path) -> list[str]:
    """Stop exactly the recorded processes and forget them; idempotent. Returns what was stopped."""
    state_dir = Path(state_dir).resolve()
    if not (state_dir / STATE_FILE).exists():
        return []
    with _locked(state_dir):
        state = read_state(state_dir, partial=True)
        if state is None:
            return []
        stopped = _stop_components(state)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        (state_dir / target_file.TARGET_FILE).unlink(missing_ok=True)
        return stopped


def _healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def lab_status(state_dir: str | Path) -> list[ComponentStatus]:
    """Health of every recorded component; empty when no lab is recorded."""
    state = read_state(Path(state_dir).resolve())
    if state is None:
        return []
    result = []
    for name in ORDER:
        component = state.components.get(name)
        if component is None:
            continue
        alive = component.is_ours_and_alive()
        result.append(
            ComponentStatus(
                name=name,
                pid=component.pid,
                alive=alive,
                healthy=alive and _healthy(component.health_url),
                url=component.url,
            )
        )
    return result


def load_state(state_dir: str | Path) -> LabState | None:
    """The recorded lab (running or not), for callers that need its URLs and files."""
    return read_state(Path(state_dir).resolve())
