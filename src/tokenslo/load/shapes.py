"""Load shapes: ramp, step, spike, soak.

Each shape is a pure function of the elapsed time (``users_at``) wrapped in a
Locust ``LoadTestShape``. Parameters come from the environment so that
``tokenslo loadtest run --shape`` and plain ``locust -f`` use the same code:
``TOKENSLO_SHAPE`` (ramp|step|spike|soak), ``TOKENSLO_SHAPE_USERS`` (peak users),
``TOKENSLO_SHAPE_SPAWN_RATE`` and ``TOKENSLO_SHAPE_DURATION`` (e.g. ``5m``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tokenslo.core.durations import parse_duration
from tokenslo.errors import InputError

ENV_SHAPE = "TOKENSLO_SHAPE"
ENV_USERS = "TOKENSLO_SHAPE_USERS"
ENV_RATE = "TOKENSLO_SHAPE_SPAWN_RATE"
ENV_DURATION = "TOKENSLO_SHAPE_DURATION"

Tick = tuple[int, float] | None


@dataclass(frozen=True)
class ShapeParams:
    users: int  # peak
    spawn_rate: float
    duration: float  # seconds; the shape ends the test after this
    steps: int = 4


def ramp(p: ShapeParams, t: float) -> Tick:
    """Linear climb to the peak over the first 80% of the run, then hold."""
    if t >= p.duration:
        return None
    climb = 0.8 * p.duration
    return max(1, math.ceil(p.users * min(1.0, t / climb))), p.spawn_rate


def step(p: ShapeParams, t: float) -> Tick:
    """``steps`` equal plateaus: peak/steps, 2·peak/steps, … peak (find the knee)."""
    if t >= p.duration:
        return None
    index = min(p.steps - 1, int(t // (p.duration / p.steps)))
    return max(1, math.ceil(p.users * (index + 1) / p.steps)), p.spawn_rate


def spike(p: ShapeParams, t: float) -> Tick:
    """A fifth of the peak, the full peak at once for the middle 20%, back to a fifth."""
    if t >= p.duration:
        return None
    base = max(1, p.users // 5)
    if 0.4 * p.duration <= t < 0.6 * p.duration:
        return p.users, max(p.spawn_rate, float(p.users))  # all at once
    return base, max(p.spawn_rate, float(p.users))  # drop back at once too


def soak(p: ShapeParams, t: float) -> Tick:
    """The peak for the whole (long) run: leaks, growing state, slow degradation."""
    return None if t >= p.duration else (p.users, p.spawn_rate)


SHAPES: dict[str, Callable[[ShapeParams, float], Tick]] = {
    "ramp": ramp,
    "step": step,
    "spike": spike,
    "soak": soak,
}


def params_from_env(env: Mapping[str, str]) -> ShapeParams:
    def number(key: str, default: str, cast: Callable[[str], float]) -> float:
        raw = env.get(key, default)
        try:
            value = cast(raw)
        except ValueError:
            raise InputError(f"not a valid value: {raw!r}", field=key) from None
        if value <= 0:
            raise InputError(f"must be positive: {raw!r}", field=key)
        return value

    return ShapeParams(
        users=int(number(ENV_USERS, "10", int)),
        spawn_rate=number(ENV_RATE, "10", float),
        duration=number(ENV_DURATION, "60s", parse_duration),
    )


def shape_class(name: str) -> type:
    """A concrete Locust ``LoadTestShape`` for ``name`` (bad input for an unknown one).

    Built on demand so that importing this module does not import Locust (and its
    gevent monkey-patching) into the ``tokenslo`` process.
    """
    if name not in SHAPES:
        raise InputError(f"unknown shape {name!r} (one of {', '.join(SHAPES)})", field="shape")
    from locust import LoadTestShape

    users_at = SHAPES[name]

    def __init__(self) -> None:
        LoadTestShape.__init__(self)
        self.params = params_from_env(os.environ)

    def tick(self) -> Tick:
        return users_at(self.params, self.get_run_time())

    return type(
        f"{name.title()}Shape",
        (LoadTestShape,),
        {"__init__": __init__, "tick": tick, "abstract": False, "__doc__": users_at.__doc__},
    )


def selected_shape(env: Mapping[str, str] | None = None) -> type | None:
    """The shape named by ``TOKENSLO_SHAPE``, or None (Locust then uses -u/-r/-t)."""
    name = (os.environ if env is None else env).get(ENV_SHAPE, "")
    return shape_class(name) if name else None
