"""Polling until something holds, bounded: one loop instead of a hand-written one per wait.

Waiting for a process to answer, for Prometheus to scrape its targets or for a game day to
recover all follow the same pattern, and each hand-written copy risked the same mistakes:
a deadline on the wall clock (which jumps), a last check forgotten at the deadline, or a
sleep past it. ``wait_until`` does it once, on the monotonic clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until[T](check: Callable[[], T], timeout: float, interval: float, what: str) -> T:
    """Call ``check`` every ``interval`` seconds until it returns something truthy, and
    return that; ``TimeoutError`` naming ``what`` when ``timeout`` seconds pass first.

    ``check`` runs at least once and once more at the deadline (sleeps never overshoot
    it); an exception it raises ends the wait at once (a process that died is not worth
    waiting for). A check whose success value may be falsy (0, an empty list) must wrap
    it, e.g. return ``(value,)``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, remaining))
