"""The one stop-signal helper every long command uses (tokenslo.signals).

Through the real CLI: tests/lab/test_lab_signals.py and tests/load/test_load_signals.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tokenslo.signals import (
    STOP_SIGNALS,
    handle_stop_signals,
    interrupts_deferred,
    interrupts_ignored,
    interrupts_raise,
)


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_every_stop_signal_raises_keyboard_interrupt_and_handlers_come_back(signum):
    before = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    cleaned = False
    with pytest.raises(KeyboardInterrupt), interrupts_raise():
        try:
            os.kill(os.getpid(), signum)
            signal.sigtimedwait([], 0)  # a bytecode boundary: the handler runs here
            for _ in range(1000):
                pass
        finally:
            cleaned = True
    assert cleaned
    assert {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} == before


def test_a_repeated_sigterm_cannot_cut_the_clean_up_short():
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts_raise():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ignored now
            for _ in range(1000):
                pass
            steps.append("cleaned up")
    assert steps == ["cleaned up"]


def test_ignored_block_and_nohup_are_respected():
    with interrupts_ignored():
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(1000):
            pass
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with handle_stop_signals(lambda *_: None):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_processes_started_during_clean_up_can_still_be_stopped():
    """Ignoring is a Python handler, not SIG_IGN, so children do not inherit it."""
    probe = "import signal; print(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)"
    with interrupts_ignored():
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
        )
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_deferred_block_completes_and_the_signal_is_raised_after_it(signum):
    steps = []
    with pytest.raises(KeyboardInterrupt), interrupts_raise():
        with interrupts_deferred():
            os.kill(os.getpid(), signum)
            signal.sigtimedwait([], 0)  # where the handler would run without the deferral
            for _ in range(1000):
                pass
            steps.append("recorded")
        steps.append("after")  # the signal is raised as the block ends
    assert steps == ["recorded"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
