"""SIGTERM and SIGHUP mean what Ctrl-C means: stop, and clean up on the way out.

A CI timeout, ``timeout(1)``, systemd or a closed terminal stop a command with SIGTERM or
SIGHUP, whose default action kills Python at once: ``finally`` blocks never run, so a
half-started lab or a Locust child keeps running with nobody to stop it. Every long
command (``lab up``, ``gameday``, ``chaos run``, ``loadtest run``, ``probe``, ``proxy``)
therefore turns both into the ``KeyboardInterrupt`` SIGINT already raises, so there is one
clean-up path; ``tokenslo.cli.main`` installs this for every command.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that ask a command to stop; each must leave nothing running behind."""

Handler = Callable[[int, FrameType | None], object]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Ignore a signal. A Python handler rather than SIG_IGN: an ignored disposition would
    be inherited by every process started during the clean-up, which then could not be
    stopped with SIGTERM; a handler is reset to the default at exec."""


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """First SIGTERM/SIGHUP: interrupt like Ctrl-C. Repeats are ignored, so a supervisor that
    signals twice cannot cut the clean-up short (a second Ctrl-C still can)."""
    for sig in STOP_SIGNALS[1:]:
        if signal.getsignal(sig) is _raise_interrupt:
            signal.signal(sig, _ignore)
    raise KeyboardInterrupt


@contextlib.contextmanager
def handle_stop_signals(handler: Handler) -> Iterator[None]:
    """Run ``handler`` on SIGINT, SIGTERM and SIGHUP inside the block; the previous handlers
    come back afterwards. A signal the caller's parent set to ignore (``nohup``) stays ignored.
    Outside the main thread (an embedding caller owns the signals) nothing changes."""
    if not _main_thread():
        yield
        return
    previous = {}
    for sig in STOP_SIGNALS:
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def interrupts_raise() -> contextlib.AbstractContextManager[None]:
    """SIGINT, SIGTERM and SIGHUP all raise ``KeyboardInterrupt`` inside the block."""
    return handle_stop_signals(_raise_interrupt)


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """No stop signal can interrupt the block (a roll-back or a report being written)."""
    with handle_stop_signals(_ignore):
        yield


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """A stop signal that arrives inside the block is re-raised when it ends, with the
    handlers that were in place before, so a change on a server and the record a rollback
    needs to undo it happen both or neither: Ctrl-C between them would leave a fault the
    rollback cannot see (Chaos Toolkit runs actions in the main thread and lets Ctrl-C
    raise there). Keep the block short: a bounded request and a local write."""
    caught: list[int] = []
    with handle_stop_signals(lambda signum, frame: caught.append(signum)):
        yield
    for sig in dict.fromkeys(caught):
        signal.raise_signal(sig)
