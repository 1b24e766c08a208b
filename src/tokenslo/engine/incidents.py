"""A synthetic incident set: per SLO, events and errors per evaluation step. Pure.

Ground truth for scoring alert policies. Each SLO gets its own timeline (seeded by
the seed and the SLO's name, so the same seed gives the same numbers): traffic with
a daily swing around ``BASE_RATE`` requests per second, baseline errors at
``BASELINE_BURN`` of the error budget (below the objective), then labelled events,
one per equal slot of the range, each starting at a random point of its slot:

- ``outage``: 100% errors for 10–30 min (two of them);
- ``partial``: errors at 20× the budget rate for 1–3 h;
- ``slow-burn``: 2.5–4× the budget rate for 18–30 h;
- ``blip``: 100% errors for 30–60 s (three of them);
- ``low-traffic``: traffic drops to 0.5% for 6 h and, 3 h in (when the 1h window holds
  only low traffic), a few single requests fail within two minutes.

An event *should alert* when it consumes at least ``SIGNIFICANT`` (2%) of the
period's error budget: the smallest share the Workbook's policy pages on (2% in 1h).
The budget is ``(1 − objective) ×`` the period's expected events (``BASE_RATE ×``
period). Time 0 is the start of the scored range; the timeline starts one
``warmup`` earlier (baseline only) so windows up to the SLO period are full at 0.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from tokenslo.core.model import SLO
from tokenslo.errors import InputError

DAY = 86400.0
BASE_RATE = 20.0  # requests per second, averaged over a day
DAILY_SWING = 0.5  # traffic goes from 0.5x to 1.5x the base rate over a day
BASELINE_BURN = 0.25  # baseline errors: a quarter of the budget rate
SIGNIFICANT = 0.02  # share of the period budget from which an event should alert
LOW_TRAFFIC = 0.005  # traffic factor of the low-traffic period
LOW_TRAFFIC_ERRORS = 8  # steps with one failed request each, in the low-traffic period
LOW_TRAFFIC_ERROR_AT = 3 * 3600.0  # seconds into the period
LOW_TRAFFIC_ERROR_SPAN = 120.0  # seconds they are spread over

# kind, error ratio (None: per budget burn, below), burn (× budget rate), min/max seconds
EVENT_KINDS: tuple[tuple[str, float, float, float], ...] = (
    ("outage", 0.0, 600.0, 1800.0),
    ("blip", 0.0, 30.0, 60.0),
    ("partial", 20.0, 3600.0, 3 * 3600.0),
    ("blip", 0.0, 30.0, 60.0),
    ("slow-burn", 2.5, 18 * 3600.0, 30 * 3600.0),
    ("low-traffic", 0.0, 6 * 3600.0, 6 * 3600.0),
    ("outage", 0.0, 600.0, 1800.0),
    ("blip", 0.0, 30.0, 60.0),
)
SLOW_BURN_MAX = 4.0  # slow burns draw their burn rate from 2.5x to this


@dataclass(frozen=True)
class Incident:
    kind: str
    start: float  # seconds from the start of the scored range
    end: float
    error_ratio: float  # during the event (the low-traffic period: its few failures)
    budget_share: float  # share of the period's error budget the event's errors consume
    should_alert: bool


@dataclass(frozen=True)
class Timeline:
    """Errors and events per ``resolution`` step: step ``j`` counts the requests in
    ``(origin + j·res, origin + (j+1)·res]``; ``origin`` is ``-warmup``. What the scorer
    replays: synthetic here, or a real range's fetched counts (``engine.observed``)."""

    slo: str
    resolution: float
    origin: float
    end: float
    errors: tuple[float, ...]  # whole requests when synthetic; a real range's may not be
    total: tuple[float, ...]
    incidents: tuple[Incident, ...]
    budget_events: float  # (1 − objective) × the period's expected events

    def step_at(self, t: float) -> int:
        """Number of steps from the origin to ``t`` (rounded to the grid)."""
        return round((t - self.origin) / self.resolution)


@dataclass
class _Event:
    kind: str
    start: float
    end: float
    error_ratio: float


def traffic(t: float) -> float:
    """Requests per second at ``t``: the daily swing around the base rate."""
    return BASE_RATE * (1.0 + DAILY_SWING * math.sin(2 * math.pi * t / DAY))


def schedule(days: float, budget: float, rng: random.Random, resolution: float) -> list[_Event]:
    """One event per equal slot of the range, lasting at most half the slot."""
    span = days * DAY
    slot = span / len(EVENT_KINDS)
    events = []
    for i, (kind, burn, shortest, longest) in enumerate(EVENT_KINDS):
        duration = min(rng.uniform(shortest, longest), slot / 2)
        if kind == "slow-burn":
            burn = rng.uniform(burn, SLOW_BURN_MAX)
        ratio = 1.0 if burn == 0.0 else min(1.0, burn * budget)
        start = i * slot + rng.uniform(0.0, slot - duration)
        start, duration = _grid(start, resolution), max(_grid(duration, resolution), resolution)
        events.append(_Event(kind, start, start + duration, ratio))
    return events


def _grid(seconds: float, resolution: float) -> float:
    return round(seconds / resolution) * resolution


def synthetic(slo: SLO, days: float, seed: int, resolution: float, warmup: float) -> Timeline:
    """The SLO's synthetic timeline over ``days`` (plus ``warmup`` of baseline)."""
    if days <= 0 or not math.isfinite(days):
        raise InputError("must be a positive number of days", field="--days")
    rng = random.Random(f"{seed}:{slo.name}")
    budget = slo.error_budget
    events = schedule(days, budget, rng, resolution)
    origin = -math.ceil(warmup / resolution) * resolution
    n = round((days * DAY - origin) / resolution)
    total: list[int] = []
    errors: list[int] = []
    low = next(e for e in events if e.kind == "low-traffic")
    noise = {
        round(
            (low.start + LOW_TRAFFIC_ERROR_AT + rng.uniform(0, LOW_TRAFFIC_ERROR_SPAN) - origin)
            / resolution
        )
        for _ in range(LOW_TRAFFIC_ERRORS)
    }
    by_step = _event_steps(events, origin, resolution)
    for j in range(n):
        t = origin + (j + 1) * resolution
        event = by_step.get(j)
        rate = traffic(t) * (
            LOW_TRAFFIC if event is not None and event.kind == "low-traffic" else 1
        )
        count = round(rate * resolution)
        ratio = event.error_ratio if event is not None and event.kind != "low-traffic" else 0.0
        bad = rng.binomialvariate(count, ratio or BASELINE_BURN * budget) if count else 0
        if j in noise and count:
            bad = max(bad, 1)
        total.append(count)
        errors.append(bad)
    budget_events = budget * BASE_RATE * slo.window
    prefix = [0, *accumulate(errors)]
    incidents = tuple(_incident(e, prefix, origin, resolution, budget_events) for e in events)
    return Timeline(
        slo=slo.name,
        resolution=resolution,
        origin=origin,
        end=days * DAY,
        errors=tuple(errors),
        total=tuple(total),
        incidents=incidents,
        budget_events=budget_events,
    )


def _event_steps(events: Sequence[_Event], origin: float, resolution: float) -> dict[int, _Event]:
    out: dict[int, _Event] = {}
    for e in events:
        first, last = round((e.start - origin) / resolution), round((e.end - origin) / resolution)
        out.update(dict.fromkeys(range(first, last), e))
    return out


def _incident(
    e: _Event, prefix: Sequence[int], origin: float, resolution: float, budget_events: float
) -> Incident:
    first, last = round((e.start - origin) / resolution), round((e.end - origin) / resolution)
    share = (prefix[last] - prefix[first]) / budget_events
    ratio = e.error_ratio
    return Incident(e.kind, e.start, e.end, ratio, share, share >= SIGNIFICANT)


def errors_between(timeline: Timeline, start: float, end: float) -> float:
    """Failed requests in ``(start, end]`` (both rounded to the timeline's grid)."""
    return _between(timeline, timeline.errors, start, end)


def events_between(timeline: Timeline, start: float, end: float) -> float:
    """Requests in ``(start, end]`` (both rounded to the timeline's grid)."""
    return _between(timeline, timeline.total, start, end)


def _between(timeline: Timeline, values: Sequence[float], start: float, end: float) -> float:
    lo = max(timeline.step_at(start), 0)
    hi = min(timeline.step_at(end), len(values))
    return sum(values[lo:hi])
