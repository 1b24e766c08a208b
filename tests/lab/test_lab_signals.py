"""Stopping ``lab up`` half way leaves nothing behind (issue 11 item 4, Must show 4).

``lab up`` runs as a real process on free ports; the signal arrives while components are
still starting. Afterwards no process of this lab is alive (found by command line in
/proc, independently of state.json), every port is free again and ``lab down`` has
nothing left to do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tokenslo.cli import main
from tokenslo.lab.orchestrator import lab_down
from tokenslo.lab.ports import port_busy
from tokenslo.lab.state import STATE_FILE, load_state

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]


def _start_lab_up(tmp_path: Path, free_lab_config) -> tuple[subprocess.Popen, Path, list[int]]:
    config = free_lab_config(tmp_path)
    cfg = tmp_path / "lab.yaml"
    ports = dict(config.ports.items())
    cfg.write_text(json.dumps({"ports": ports, "slo_paths": list(config.slo_paths)}))
    state_dir = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenslo", "lab", "up"]
        + ["--config", str(cfg), "--state-dir", str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, state_dir, [p for k, p in ports.items() if k != "prober" and p]


def _recorded(state_dir: Path) -> set[str]:
    try:
        return set(json.loads((state_dir / STATE_FILE).read_text())["components"])
    except (OSError, ValueError):
        return set()


@pytest.mark.parametrize(
    ("signum", "after"), [(signal.SIGTERM, "gateway"), (signal.SIGHUP, "webhook")]
)
def test_stop_signal_during_lab_up_leaves_no_process_and_no_port(
    tmp_path, free_lab_config, lab_pids, wait_until, signum, after
):
    proc, state_dir, ports = _start_lab_up(tmp_path, free_lab_config)
    try:
        # state.json names each component as soon as it is spawned, before it is ready
        wait_until(lambda: after in _recorded(state_dir) or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.communicate()
        started = lab_pids(state_dir)
        assert started, "some lab process must be running when the signal arrives"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    try:
        assert proc.returncode == 130, out + err
        assert err.strip().splitlines()[-1] == "tokenslo: interrupted"
        assert lab_pids(state_dir) == set()
        assert [port for port in ports if port_busy(port)] == []
        assert not (state_dir / STATE_FILE).exists()
        assert main(["lab", "down", "--state-dir", str(state_dir)]) == 0
    finally:
        lab_down(state_dir)  # a lab up that ignored the signal must not outlive the test


def test_lab_down_finds_what_a_killed_lab_up_started(
    tmp_path, free_lab_config, lab_pids, wait_until, capsys
):
    """SIGKILL leaves no chance to clean up; state.json already names every spawned process."""
    proc, state_dir, ports = _start_lab_up(tmp_path, free_lab_config)
    try:
        wait_until(lambda: "idp" in _recorded(state_dir) or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
        left = lab_pids(state_dir)
        assert left, "the killed lab up leaves its components running"
        assert json.loads((state_dir / STATE_FILE).read_text())["complete"] is False
        assert load_state(state_dir) is None  # users of a lab never see a half-started one
        assert main(["lab", "down", "--state-dir", str(state_dir)]) == 0
        stopped = capsys.readouterr().out
        assert stopped.startswith("stopped: ") and "webhook" in stopped and "idp" in stopped
        assert lab_pids(state_dir) == set()
        assert [port for port in ports if port_busy(port)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        main(["lab", "down", "--state-dir", str(state_dir)])
