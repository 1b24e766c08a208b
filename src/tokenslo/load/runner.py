"""Run Locust headless as a subprocess of the real ``locust`` CLI and collect the recorder.

A subprocess (not Locust as a library) because Locust monkey-patches the whole
interpreter with gevent, and because its master/worker and ``--processes`` modes
are process-level features anyway. Three layouts, all on loopback:

* one process (default);
* ``--processes N``: Locust forks N workers under one master itself;
* ``--workers N``: this module starts one master and N worker processes.

The target, credentials and scenario travel in the environment (never argv);
the master writes the merged recorder (``tokenslo.load.recorder``) to a file
that is read back here.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tokenslo.errors import UnavailableError
from tokenslo.load.pacing import ENV_PACING, Pacing
from tokenslo.load.protocol import ENV_SCENARIO
from tokenslo.load.recorder import ENV_OUT, Recorder
from tokenslo.load.shapes import ENV_DURATION, ENV_RATE, ENV_SHAPE, ENV_USERS
from tokenslo.load.target import LoadTarget
from tokenslo.prometheus.process import free_port, stop_pid
from tokenslo.signals import interrupts_deferred

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOOPBACK = "127.0.0.1"
GRACE = 90.0  # seconds past the run time before a hung Locust is stopped


@dataclass(frozen=True)
class RunSpec:
    scenario: str
    users: int
    spawn_rate: float
    duration: float  # seconds
    shape: str | None = None
    processes: int | None = None  # Locust's own --processes
    workers: int = 0  # separate worker processes started here (master/worker on loopback)
    pacing: Pacing | None = None  # None: users never wait
    locustfile: Path = LOCUSTFILE
    extra_args: tuple[str, ...] = field(default_factory=tuple)


def run_time_arg(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def base_command(spec: RunSpec) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(spec.locustfile)]


def master_command(spec: RunSpec, host: str, port: int | None) -> list[str]:
    """The headless (master or stand-alone) invocation; workers get ``worker_command``."""
    cmd = base_command(spec) + [
        "--headless",
        "-u", str(spec.users),
        "-r", f"{spec.spawn_rate:g}",
        "-t", run_time_arg(spec.duration),
        "-H", host,
        "--only-summary",
        "--stop-timeout", "5",
    ]  # fmt: skip
    if spec.processes or spec.workers:
        assert port is not None
        cmd += ["--master-bind-host", LOOPBACK, "--master-bind-port", str(port)]
        cmd += ["--master-port", str(port)]  # the forked --processes workers connect here
    if spec.processes:
        cmd += ["--processes", str(spec.processes)]
    elif spec.workers:
        cmd += ["--master", "--expect-workers", str(spec.workers)]
        cmd += ["--expect-workers-max-wait", "30"]
    return cmd + list(spec.extra_args)


def worker_command(spec: RunSpec, port: int) -> list[str]:
    return base_command(spec) + [
        "--worker", "--master-host", LOOPBACK, "--master-port", str(port),
    ]  # fmt: skip


def locust_env(spec: RunSpec, target: LoadTarget, out: Path) -> dict[str, str]:
    env = {**os.environ, **target.as_env(), ENV_SCENARIO: spec.scenario, ENV_OUT: str(out)}
    env.pop(ENV_SHAPE, None)
    env.pop(ENV_PACING, None)
    if spec.pacing is not None:
        env[ENV_PACING] = spec.pacing.env_value()
    if spec.shape:
        env.update(
            {
                ENV_SHAPE: spec.shape,
                ENV_USERS: str(spec.users),
                ENV_RATE: f"{spec.spawn_rate:g}",
                ENV_DURATION: run_time_arg(spec.duration),
            }
        )
    return env


@dataclass
class LocustResult:
    recorder: Recorder
    returncode: int
    log: Path


def run_locust(spec: RunSpec, target: LoadTarget, workdir: Path) -> LocustResult:
    """Run the test and return the merged recorder; every process started is stopped by PID."""
    workdir = workdir.resolve()  # Locust runs in it: a relative path would point elsewhere
    workdir.mkdir(parents=True, exist_ok=True)
    out, log = workdir / "recorder.json", workdir / "locust.log"
    out.unlink(missing_ok=True)
    env = locust_env(spec, target, out)
    port = free_port() if (spec.processes or spec.workers) else None
    procs: list[subprocess.Popen] = []
    with open(log, "w", encoding="utf-8") as sink:
        try:
            with interrupts_deferred():  # a spawned process must be in procs to be stopped
                master = _spawn(master_command(spec, target.idp_url, port), env, sink, workdir)
                procs.append(master)
            for _ in range(spec.workers):
                assert port is not None
                with interrupts_deferred():
                    procs.append(_spawn(worker_command(spec, port), env, sink, workdir))
            code = _wait(master, spec.duration + GRACE)
            for worker in procs[1:]:
                _wait(worker, 30.0)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    stop_pid(proc.pid, child=proc)
    if not out.exists():
        raise UnavailableError(
            f"Locust ended (exit {code}) without results; see {log}: {_tail(log)}"
        )
    return LocustResult(Recorder.read(out), code, log)


def _spawn(cmd: list[str], env: dict[str, str], sink, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)


def _wait(proc: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if proc.poll() is None:
        stop_pid(proc.pid, child=proc)
    return proc.wait(timeout=15)


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])
