"""Score alert policies over a real range: Prometheus's counts as the scorer's timeline.

Per SLO, two range queries (its errors and its events, each over one step, at every
step: ``tokenslo.engine.backtest.fetch_series``, one query per series and
``MAX_POINTS`` chunk) give the requests of each step from one SLO period (or the
policies' longest window, if longer) before ``--start`` to ``--end``. That is the very
``Timeline`` a synthetic incident set is, so the replay (windows up to 6h summed from
the steps, longer ones from 5m sums at every rule evaluation, ``for``, traffic-aware
thresholds) and the measures are the synthetic path's own code
(``tokenslo.engine.scoring.score_timeline``); the incidents file gives the labels.

Time 0 of every timeline is ``--start``. The error budget a share is taken of is
``(1 − objective) ×`` the events over the SLO period ending at ``--end``. A step
without data counts no requests (no alert can fire on it; the share of such steps is
reported, since a step shorter than two scrapes of the counters leaves most steps
empty); an SLO whose errors or events series is absent over the whole fetched range,
or without a single event in its last period, has no data: it is left out and named
(exit 3, as the backtest). The step divides each policy's interval (evaluations on the
rules' grid) or is a multiple of it (evaluated every step instead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO
from tokenslo.core.promql import sli_exprs
from tokenslo.engine.backtest import KINDS, MAX_STEPS, fetch_series, step_grid
from tokenslo.engine.incidents import Incident, Timeline, errors_between, events_between
from tokenslo.engine.scoring import RealRange, Scoring, score_timeline, warmup_of
from tokenslo.errors import InputError
from tokenslo.prometheus.client import PromClient
from tokenslo.spec.incidents import IncidentEntry, IncidentsFile
from tokenslo.spec.policy import Policy, apply

_EPS = 1e-6
# SLO name → (errors, events) per step (NaN: no value), or None when a series is absent
StepCounts = dict[str, tuple[list[float], list[float]] | None]


# ---------------------------------------------------------------- grid and timeline (pure)


def check_step(step: float, policies: Sequence[Policy]) -> None:
    """The step must divide each policy's evaluation interval (each evaluation then
    falls on a step boundary, as on the deployed rules' grid) or be a whole multiple
    of it (the policy is then evaluated every step: coarser than the rules)."""
    for policy in policies:
        ratio = policy.interval / step
        if min(abs(ratio - round(ratio)), abs(1 / ratio - round(1 / ratio))) > _EPS:
            raise InputError(
                f"step {format_duration(step)} neither divides nor is a multiple of policy "
                f"{policy.name!r}'s interval {format_duration(policy.interval)}",
                field="--step",
            )


def range_end(start: float, end: float, step: float) -> float:
    """``end`` moved back onto the grid of whole steps from ``start``."""
    return round(start + math.floor((end - start) / step + _EPS) * step, 3)


def lead_steps(warmup: float, step: float) -> int:
    """Whole steps of history before the start (at least ``warmup``)."""
    return math.ceil(warmup / step - _EPS)


def step_times(start: float, end: float, step: float, warmup: float) -> list[float]:
    """Times of the per-step counts: the end of each step from ``lead_steps`` before
    ``start`` to ``end`` (unix seconds, on Prometheus's millisecond grid)."""
    first = start - (lead_steps(warmup, step) - 1) * step
    return [round(t, 3) for t in step_grid(first, end, step, limit=MAX_STEPS)]


def _present(values: Sequence[float]) -> list[float]:
    """Absent steps (NaN) as 0."""
    return [v if v == v else 0.0 for v in values]  # NaN != NaN


def gap_share(total: Sequence[float], steps: int) -> float:
    """Share of the last ``steps`` (the scored range) without a value: a step shorter
    than two scrapes of the counters leaves most of them empty."""
    if steps <= 0:
        return 0.0
    return sum(1 for v in total[len(total) - steps :] if v != v) / steps  # NaN != NaN


def observed_timeline(
    slo: SLO,
    errors: Sequence[float],
    total: Sequence[float],
    real: RealRange,
    warmup: float,
    entries: Sequence[IncidentEntry],
) -> Timeline | None:
    """``slo``'s timeline from its per-step counts (as ``step_times`` lays them out) and
    its incidents from the file's entries; None without an event in its last period."""
    step = real.step
    period = min(round(slo.window / step), len(total))
    budget_events = slo.error_budget * math.fsum(total[len(total) - period :])
    if budget_events <= 0:
        return None
    timeline = Timeline(
        slo=slo.name,
        resolution=step,
        origin=-lead_steps(warmup, step) * step,
        end=round((real.end - real.start) / step) * step,
        errors=tuple(errors),
        total=tuple(total),
        incidents=(),
        budget_events=budget_events,
    )
    return replace(timeline, incidents=tuple(_incident(timeline, e, real.start) for e in entries))


def _incident(timeline: Timeline, entry: IncidentEntry, origin: float) -> Incident:
    start, end = entry.start - origin, entry.end - origin
    errors = errors_between(timeline, start, end)
    events = events_between(timeline, start, end)
    return Incident(
        kind=entry.kind,
        start=start,
        end=end,
        error_ratio=errors / events if events > 0 else 0.0,
        budget_share=errors / timeline.budget_events,
        should_alert=entry.should_alert,
    )


# ---------------------------------------------------------------- fetch and score (I/O)


def fetch_step_counts(
    slos: Sequence[SLO], client: PromClient, real: RealRange, warmups: dict[str, float]
) -> StepCounts:
    """Each SLO's errors and events per step (two range queries per SLO and chunk)."""
    window = format_duration(real.step)
    times = {
        slo.name: step_times(real.start, real.end, real.step, warmups[slo.name]) for slo in slos
    }
    jobs = [
        ((slo.name, kind), expr, times[slo.name])
        for slo in slos
        for kind, expr in zip(KINDS, sli_exprs(slo.sli, window), strict=True)
    ]
    fetched = dict(fetch_series(client, jobs, real.step))
    out: StepCounts = {}
    for slo in slos:
        errors, total = fetched[(slo.name, "errors")], fetched[(slo.name, "total")]
        # errors fall back to 0 without series (sli_exprs): absent means no data, too
        out[slo.name] = None if errors is None or total is None else (errors, total)
    return out


def score_range(
    slos: Sequence[SLO],
    policies: Sequence[Policy],
    client: PromClient,
    real: RealRange,
    incidents: IncidentsFile,
) -> Scoring:
    """Every policy against every SLO's real range, labelled by ``incidents``."""
    check_step(real.step, policies)
    start = round(real.start, 3)
    real = replace(real, start=start, end=range_end(start, real.end, real.step))
    incidents.check((slo.name for slo in slos), real.start, real.end)
    result = Scoring(
        days=(real.end - real.start) / 86400.0, seed=None, policies=list(policies), real=real
    )
    applied = {slo.name: [apply(p, slo) for p in policies] for slo in slos}
    warmups = {slo.name: warmup_of(slo, applied[slo.name]) for slo in slos}
    counts = fetch_step_counts(slos, client, real, warmups)
    for slo in slos:
        fetched = counts[slo.name]
        timeline = None
        if fetched is not None:
            errors, total = fetched
            result.gaps[slo.name] = gap_share(total, round((real.end - real.start) / real.step))
            entries = incidents.for_slo(slo.name)
            timeline = observed_timeline(
                slo, _present(errors), _present(total), real, warmups[slo.name], entries
            )
        if timeline is None:
            result.no_data.append(slo.name)
            continue
        score_timeline(result, applied[slo.name], timeline)
    return result
