"""A stop signal to the runner is remembered, whatever ``chaos`` then writes in its journal.

Chaos Toolkit marks a journal interrupted only when the forwarded SIGINT lands inside an
activity; in a pause or the rollbacks it finishes and writes "completed". A game day
stopped with SIGTERM then read the experiment as finished and went on to the next one.
Here a real child stands in for ``chaos``: it finishes cleanly on SIGINT, as chaos does
in a pause, and the runner process is stopped with a real SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tokenslo.chaos import journal, runner

CHILD = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))  # "completed", rollbacks done
pathlib.Path(sys.argv[1]).write_text("ready")
time.sleep(60)
sys.exit(3)
"""

DRIVER = """
import json, os, sys
from tokenslo.chaos import runner
code, output, stopped = runner._supervise(
    [sys.executable, "-c", sys.argv[1], sys.argv[2]], dict(os.environ), 60.0, True
)
print(json.dumps({"code": code, "stopped": stopped, "output": output}))
"""


def _run_and_stop(tmp_path: Path, signum: int | None) -> dict:
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, CHILD, str(ready)], stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "child never started"
            time.sleep(0.05)
        if signum is not None:
            proc.send_signal(signum)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    return json.loads(out)


def test_sigterm_to_the_runner_is_reported_even_when_chaos_completes(tmp_path):
    result = _run_and_stop(tmp_path, signal.SIGTERM)
    assert result["code"] == 0  # the child finished cleanly after the forwarded SIGINT
    assert result["stopped"] is True
    assert "[tokenslo] interrupted" in result["output"]


def test_a_completed_journal_of_a_stopped_run_is_judged_interrupted():
    held = journal.Verdict("held", "completed", False)
    stopped = runner.interrupted_verdict(held)
    assert (stopped.outcome, stopped.exit_code) == ("interrupted", 1)
    assert stopped.reasons == ["stopped by a signal (journal status completed)"]
    already = journal.Verdict("interrupted", "interrupted", False, ["x"])
    assert runner.interrupted_verdict(already) is already
