"""Pacing: how long a Locust user waits between tasks.

By default users never wait (``constant(0)``): a load test measures the target at a
given concurrency. Background load (chaos experiments, game days) needs the opposite:
a steady, known request rate that leaves the target unsaturated, so an SLO burns
because of the injected fault and not because of the load. Two pacings:

* ``--rate R``: R task runs per second in total, shared by the users — each user gets
  Locust's ``constant_throughput(R / users)`` (with ``--shape``, ``users`` is the peak);
* ``--wait MIN-MAX``: each user waits a random MIN..MAX seconds after a task
  (Locust's ``between``).

A task is one request, except logout (grant + revoke: two), ``fresh-api`` (issue + API
call: two) and a token renewal, which adds one. The choice reaches Locust processes
(also forked or remote workers) in ``TOKENSLO_PACING``: ``throughput:X`` (per user) or
``between:MIN:MAX``; plain ``locust -f loadtests/…`` reads the same variable.
Pure except ``wait_time``, which imports Locust.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tokenslo.errors import InputError

ENV_PACING = "TOKENSLO_PACING"
MAX_WAIT = 3600.0


@dataclass(frozen=True)
class Pacing:
    kind: str  # "throughput" (task runs/s per user) or "between" (seconds)
    values: tuple[float, ...]

    def env_value(self) -> str:
        return ":".join([self.kind, *(f"{v:g}" for v in self.values)])


def _number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"not a number: {text!r}", field=field) from None
    if not math.isfinite(value):
        raise InputError(f"must be finite: {text!r}", field=field)
    return value


def from_rate(rate: str | float, users: int, field: str = "--rate") -> Pacing:
    """``--rate R`` (total task runs/s) → ``constant_throughput(R / users)`` per user."""
    value = _number(str(rate), field)
    if value <= 0:
        raise InputError(f"must be positive (task runs per second): {rate!r}", field=field)
    if users < 1:
        raise InputError("needs at least one user", field="--users")
    return Pacing("throughput", (value / users,))


def from_wait(text: str, field: str = "--wait") -> Pacing:
    """``--wait MIN-MAX`` (or a single number: a constant wait) → ``between(MIN, MAX)``."""
    low, sep, high = text.strip().partition("-")
    minimum = _number(low, field)
    maximum = _number(high, field) if sep else minimum
    if not 0 <= minimum <= maximum <= MAX_WAIT:
        raise InputError(
            f"must be MIN-MAX seconds with 0 <= MIN <= MAX <= {MAX_WAIT:g}, got {text!r}",
            field=field,
        )
    return Pacing("between", (minimum, maximum))


def from_env(env: Mapping[str, str]) -> Pacing | None:
    """The pacing named by ``TOKENSLO_PACING``, or None (users do not wait)."""
    raw = env.get(ENV_PACING, "").strip()
    if not raw:
        return None
    kind, _sep, rest = raw.partition(":")
    parts = rest.split(":") if rest else []
    if kind == "throughput" and len(parts) == 1:
        per_user = _number(parts[0], ENV_PACING)
        if per_user > 0:
            return Pacing(kind, (per_user,))
    elif kind == "between" and len(parts) == 2:
        return from_wait("-".join(parts), field=ENV_PACING)
    raise InputError(
        f"must be throughput:RUNS_PER_S or between:MIN:MAX, got {raw!r}", field=ENV_PACING
    )


def wait_time(pacing: Pacing | None) -> Callable:
    """The Locust ``wait_time`` for a pacing (``constant(0)`` without one)."""
    from locust import between, constant, constant_throughput

    if pacing is None:
        return constant(0)
    if pacing.kind == "throughput":
        return constant_throughput(pacing.values[0])
    return between(*pacing.values)
