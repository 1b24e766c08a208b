"""Live progress of a game day on stderr.

On a terminal, one status line (phase, experiment i/n, elapsed, alerts fired so
far) is redrawn in place every second by a daemon thread. Without a terminal
(CI logs, pipes) it writes one plain line per phase change and nothing else;
``enabled=False`` (``--no-progress``) writes nothing at all.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_SECONDS = 1.0
POLL_SECONDS = 2.0


def format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def status_line(
    phase: str, experiment: str, index: int, total: int, elapsed: float, alerts: int | None
) -> str:
    """The one line shown on a terminal (pure)."""
    parts = [f"[gameday {format_elapsed(elapsed)}]", phase]
    if experiment:
        parts.append(f"experiment {index}/{total} {experiment}")
    if alerts is not None:
        parts.append(f"alerts fired: {alerts}")
    return "  ".join(parts)


class Progress:
    """``phase(...)`` on every phase change; ``close()`` at the end (idempotent)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        enabled: bool = True,
        tty: bool | None = None,
        alerts_fired: Callable[[], int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(self.stream.isatty()) if tty is None else tty
        self._alerts_fired = alerts_fired
        self._clock = clock
        self._started = clock()
        self._phase, self._experiment, self._index, self._total = "starting", "", 0, 0
        self._alerts: int | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.enabled and self.tty:
            self._thread = threading.Thread(target=self._redraw_loop, daemon=True)
            self._thread.start()

    def phase(self, phase: str, experiment: str = "", index: int = 0, total: int = 0) -> None:
        with self._lock:
            self._phase, self._experiment, self._index, self._total = (
                phase,
                experiment,
                index,
                total,
            )
        if not self.enabled:
            return
        if self.tty:
            self._draw()
        else:
            self._write(self._line() + "\n")

    def note(self, message: str) -> None:
        """A line that stays (warnings): above the status line on a terminal."""
        if not self.enabled:
            return
        self._write(("\r\033[K" if self.tty else "") + message + "\n")
        if self.tty:
            self._draw()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
            self._write("\r\033[K" + self._line() + "\n")

    def _line(self) -> str:
        with self._lock:
            return status_line(
                self._phase,
                self._experiment,
                self._index,
                self._total,
                self._clock() - self._started,
                self._alerts,
            )

    def _draw(self) -> None:
        self._write("\r\033[K" + self._line())

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed terminal must not stop the game day

    def _redraw_loop(self) -> None:
        last_poll = 0.0
        while not self._stop.wait(REDRAW_SECONDS):
            if self._alerts_fired is not None and self._clock() - last_poll >= POLL_SECONDS:
                last_poll = self._clock()
                try:
                    count = self._alerts_fired()
                except Exception:  # noqa: BLE001 - the display never fails the game day
                    count = None
                with self._lock:
                    self._alerts = count if count is not None else self._alerts
            self._draw()
