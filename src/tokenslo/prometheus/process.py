"""Start and stop the real Prometheus, Alertmanager and promtool binaries, and the
single-node VictoriaMetrics and vmalert binaries (the second PromQL backend the tests run).

Used by the lab and by tests (no mocked Prometheus anywhere). Processes are
always addressed by PID and bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

from tokenslo.errors import UnavailableError
from tokenslo.waiting import wait_until

BINARIES = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "victoria-metrics": ("victoria-metrics",),
    "vmalert": ("vmalert",),
}
# the Debian package of each binary
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "victoria-metrics": "victoria-metrics",
    "vmalert": "victoria-metrics",
}


def find_binary(kind: str) -> str:
    """Path of a Prometheus- or VictoriaMetrics-family binary, or a clear error naming
    the Debian package."""
    for name in BINARIES[kind]:
        path = shutil.which(name)
        if path:
            return path
    raise UnavailableError(
        f"{BINARIES[kind][0]} not found on PATH; install the Debian package {PACKAGES[kind]!r} "
        "(scripts/bootstrap does this)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ManagedProcess:
    """A child process we started, with the URL that tells whether it is ready."""

    name: str
    proc: subprocess.Popen
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, path: str = "/-/ready", timeout: float = 30.0) -> None:
        try:
            wait_until(lambda: self._ready(path), timeout, 0.1, f"{self.name} to be ready")
        except TimeoutError:
            self.stop()
            raise UnavailableError(
                f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}"
            ) from None

    def _ready(self, path: str) -> bool:
        """Whether ``path`` answers 200; a process that exited will never be ready."""
        if self.proc.poll() is not None:
            raise UnavailableError(
                f"{self.name} exited with code {self.proc.returncode} during start-up; "
                f"see {self.log_path}: {_tail(self.log_path)}"
            )
        try:
            return requests.get(self.url + path, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        stop_pid(self.proc.pid, timeout=timeout, child=self.proc)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_pid(pid: int, timeout: float = 10.0, child: subprocess.Popen | None = None) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; reaps our own children."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                return
        elif not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if child is not None:
        child.wait(timeout=5)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/<pid>/stat).

    With the PID it names one process for good: a recycled PID has another start time,
    so whoever records both never signals a stranger."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def spawn(
    name: str,
    argv: list[str],
    workdir: Path,
    url: str,
    *,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """Start ``argv`` in its own session (Ctrl-C in the terminal reaches us, not it),
    output appended to ``log_path`` (default ``workdir/<name>.log``)."""
    log_path = log_path or workdir / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env=env,
            start_new_session=True,
        )
    return ManagedProcess(name=name, proc=proc, url=url, log_path=log_path)


PORT_ATTEMPTS = 3


def start_on_port(
    name: str,
    head: list[str],
    tail: list[str],
    workdir: Path,
    port: int | None,
    wait: bool,
    *,
    listen_flag: str = "--web.listen-address",
) -> ManagedProcess:
    """Spawn ``head + listen_flag + tail`` on ``port``, or on a free port picked here
    (``listen_flag`` is Prometheus' ``--web.listen-address`` or VictoriaMetrics'
    ``-httpListenAddr``). A picked port was only free a moment ago: another process (a
    parallel test) can bind it before ours does. Then ours exits with "address already
    in use" and a fresh port is picked, at most ``PORT_ATTEMPTS`` times. A port the
    caller chose is never swapped."""

    def launch(chosen: int) -> ManagedProcess:
        argv = [*head, f"{listen_flag}=127.0.0.1:{chosen}", *tail]
        return spawn(name, argv, workdir, f"http://127.0.0.1:{chosen}")

    if port is not None or not wait:
        proc = launch(port or free_port())
        if wait:
            proc.wait_ready()
        return proc
    attempt = 1
    while True:
        proc = launch(free_port())
        try:
            proc.wait_ready()
            return proc
        except UnavailableError:
            taken = "address already in use" in _tail(proc.log_path, 20).lower()
            if attempt >= PORT_ATTEMPTS or not taken:
                raise
        attempt += 1


def start_prometheus(
    config: dict,
    workdir: Path,
    port: int | None = None,
    *,
    rule_files: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    wait: bool = True,
) -> ManagedProcess:
    """Run the real Prometheus on 127.0.0.1 with ``config`` (a prometheus.yml as a dict).

    ``rule_files`` maps file names to YAML text; they are written beside the
    config and added to ``rule_files``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    for fname, text in (rule_files or {}).items():
        (workdir / fname).write_text(text)
        config.setdefault("rule_files", []).append(str(workdir / fname))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    head = [find_binary("prometheus"), f"--config.file={config_path}"]
    tail = [
        f"--storage.tsdb.path={workdir / 'data'}",
        # No --web.enable-admin-api / --web.enable-lifecycle: nothing here deletes series,
        # snapshots or reloads, and anyone reaching the port could otherwise do all three.
        *(extra_args or []),
    ]
    return start_on_port("prometheus", head, tail, workdir, port, wait)


def start_alertmanager(
    config: dict, workdir: Path, port: int | None = None, *, wait: bool = True
) -> ManagedProcess:
    """Run the real Alertmanager on 127.0.0.1, clustering off."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "alertmanager.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    head = [find_binary("alertmanager"), f"--config.file={config_path}"]
    tail = [f"--storage.path={workdir / 'am-data'}", "--cluster.listen-address="]
    return start_on_port("alertmanager", head, tail, workdir, port, wait)


def start_victoria_metrics(
    workdir: Path,
    scrape_config: dict | None = None,
    port: int | None = None,
    *,
    extra_args: list[str] | None = None,
    wait: bool = True,
) -> ManagedProcess:
    """Run single-node VictoriaMetrics on 127.0.0.1 with its data in ``workdir/data``.

    ``scrape_config`` (a prometheus.yml as a dict) makes it scrape like Prometheus.
    Keys only Prometheus reads (``rule_files``, ``evaluation_interval``: rules are
    vmalert's job here) are ignored rather than refused. Samples are queryable as soon
    as they are stored (``-search.latencyOffset=0s``; the default 30s would hide the
    newest half-minute from every instant query at "now", which Prometheus never does),
    and the retention is long enough for any imported history.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    head = [
        find_binary("victoria-metrics"),
        f"-storageDataPath={workdir / 'data'}",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
    ]
    if scrape_config is not None:
        config_path = workdir / "scrape.yml"
        config_path.write_text(yaml.safe_dump(scrape_config, sort_keys=False))
        head += [f"-promscrape.config={config_path}", "-promscrape.config.strictParse=false"]
    tail = list(extra_args or [])
    return start_on_port(
        "victoria-metrics", head, tail, workdir, port, wait, listen_flag="-httpListenAddr"
    )


def start_vmalert(
    rules: str,
    workdir: Path,
    datasource_url: str,
    notifier_url: str,
    port: int | None = None,
    *,
    evaluation_interval: str = "1s",
    wait: bool = True,
) -> ManagedProcess:
    """Run vmalert on 127.0.0.1 evaluating ``rules`` (rule-file YAML text) against
    ``datasource_url``.

    vmalert keeps no TSDB: recording-rule results are remote-written back to the
    datasource (it refuses recording rules without ``-remoteWrite.url``), flushed every
    ``evaluation_interval`` rather than every 5 s, so the alerts that read them see
    them about one evaluation later than in Prometheus, where a group's rules read each
    other's results at once. It refuses alerting rules without a notifier (this release
    has no blackhole notifier). A group's own ``interval`` overrides
    ``evaluation_interval``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rule_path = workdir / "rules.yml"
    rule_path.write_text(rules)
    head = [
        find_binary("vmalert"),
        f"-rule={rule_path}",
        f"-datasource.url={datasource_url}",
        f"-remoteWrite.url={datasource_url}",
        f"-remoteWrite.flushInterval={evaluation_interval}",
        f"-notifier.url={notifier_url}",
        f"-evaluationInterval={evaluation_interval}",
    ]
    return start_on_port("vmalert", head, [], workdir, port, wait, listen_flag="-httpListenAddr")


def run_promtool(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run promtool and return the completed process (callers judge the exit code)."""
    return subprocess.run(
        [find_binary("promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
