"""SIGTERM to ``tokenslo loadtest run`` stops its Locust child too (issue 11 item 4).

Only the CLI's own PID is signalled (a supervisor that knows nothing of Locust); the
Locust process it started must be gone once the CLI has exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support import wait_until
from tokenslo.prometheus.process import pid_alive

pytestmark = [pytest.mark.lab, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def _locust_children(parent: int) -> set[int]:
    """Live processes whose parent is ``parent`` and whose command line runs Locust."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == parent and b"locust" in cmdline and pid_alive(int(entry.name)):
            found.add(int(entry.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_to_loadtest_run_stops_locust(lab, tmp_path, signum):
    cmd = [sys.executable, "-m", "tokenslo", "loadtest", "run", "--scenario", "mixed"]
    cmd += ["--users", "2", "--spawn-rate", "2", "--duration", "10m"]
    cmd += ["--target", str(lab.state_dir / "target.yaml"), "--gate", str(REPO / "slo")]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    children: set[int] = set()
    try:
        wait_until(lambda: children.update(_locust_children(proc.pid)) or children, 120)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (out + err).decode(errors="replace")[-2000:]
        assert [pid for pid in children if pid_alive(pid)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        for pid in children:  # a failed run must not leave Locust loading the lab
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_stop_signal_right_after_a_spawn_still_stops_that_process(tmp_path, monkeypatch):
    """SIGTERM as the Locust master has been spawned but not yet listed for the clean-up:
    the spawn and the listing happen both or neither, so the clean-up stops it (a
    ``sleep`` stands in for Locust; nothing else runs)."""
    from types import SimpleNamespace

    from tokenslo.load import runner
    from tokenslo.signals import interrupts_raise

    spawned: list[subprocess.Popen] = []
    original = runner._spawn

    def spawn_then_signal(cmd, env, sink, cwd):
        proc = original(["sleep", "60"], env, sink, cwd)
        spawned.append(proc)
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # where the handler runs without the deferral
        return proc

    monkeypatch.setattr(runner, "_spawn", spawn_then_signal)
    monkeypatch.setattr(runner, "locust_env", lambda spec, target, out: dict(os.environ))
    spec = runner.RunSpec(scenario="mixed", users=1, spawn_rate=1, duration=5)
    target = SimpleNamespace(idp_url="http://127.0.0.1:9")
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_raise():
            runner.run_locust(spec, target, tmp_path)  # type: ignore[arg-type]
        assert spawned and spawned[0].poll() is not None
    finally:
        for proc in spawned:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
