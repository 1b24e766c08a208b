"""SIGTERM or SIGHUP to ``tokenslo chaos run`` alone rolls the fault back (issue 11 item 4).

Only the runner's own PID is signalled, as a CI timeout or a supervisor would; the
runner must forward the stop to ``chaos`` so the rollbacks run, and leave no fault
and no ``chaos`` child behind.
"""

from __future__ import annotations

import signal

import pytest
from test_safety import active_faults, start_run, stop, wait_until

pytestmark = [pytest.mark.lab, pytest.mark.chaos]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_to_the_runner_rolls_back(lab, tmp_path, signum):
    admin = lab.admin("idp")
    admin.clear_faults()
    proc = start_run(lab, tmp_path, "tokenslo", expiry=300)
    log = tmp_path / "runner.out"
    try:
        faults = wait_until(lambda: active_faults(admin) or proc.poll() is not None, 60, log=log)
        assert isinstance(faults, list), log.read_text()[-3000:]
        proc.send_signal(signum)  # the runner only, not its process group
        proc.wait(timeout=60)
        output = log.read_text()
        assert active_faults(admin) == [], output[-3000:]
        # exactly as after Ctrl-C: an interrupted experiment is reported and not met (exit 1)
        assert proc.returncode == 1, output[-3000:]
        assert "journal status interrupted" in output
    finally:
        stop(proc)
        admin.clear_faults()
