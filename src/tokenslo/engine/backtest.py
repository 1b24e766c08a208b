"""Replay a past time range: when would each alert condition have fired?

Same plan as the evaluator (one batched query per distinct alert window, every
SLO inside), but as range queries, so the cost is one request per window for
the whole range rather than one per step. The interval computation is pure and
works on the fetched step grid.

Firing follows Prometheus's ``for``: a condition (both windows' error ratio
above the threshold) must hold at consecutive steps for at least ``for_``
seconds before it counts; the interval starts at the first step where that is
true and ends at the first step where the condition no longer holds (a step
without data ends it too, as an absent rule result would). To know whether a
condition was already pending when the range starts, the fetch begins
``max(for_)`` (rounded up to whole steps) earlier; an interval may therefore
start slightly before ``start``. ``end`` is None when still firing at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tokenslo.core import burnrate
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, BurnWindow
from tokenslo.engine.evaluator import (
    KIND_LABEL,
    SLO_LABEL,
    WindowCounts,
    alert_windows,
    check_unique_names,
    decision_windows,
    iso_time,
    plan_queries,
    window_threshold,
)
from tokenslo.errors import InputError
from tokenslo.prometheus.client import PromClient, sample_value

MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series
_EPS = 1e-6

# SLO name → window seconds → step time (ms) → counts
RangeCounts = dict[str, dict[float, dict[int, WindowCounts]]]


@dataclass(frozen=True)
class AlertInterval:
    slo: str
    severity: str
    long_window: float
    short_window: float
    start: float
    end: float | None  # None: still firing at the end of the range


@dataclass
class Backtest:
    start: float
    end: float
    step: float
    intervals: dict[str, list[AlertInterval]] = field(default_factory=dict)  # per SLO
    no_data: list[str] = field(default_factory=list)  # SLOs with a window never present


# ---------------------------------------------------------------- grid and parsing (pure)


def _ms(ts: float) -> int:
    return round(ts * 1000)


def step_grid(start: float, end: float, step: float) -> list[float]:
    """Evaluation times of a range query: ``start, start+step, … ≤ end``."""
    if step <= 0:
        raise InputError("step must be positive", field="step")
    if end < start:
        raise InputError("end is before start", field="end")
    points = math.floor((end - start) / step + _EPS) + 1
    if points > MAX_POINTS:
        minimum = format_duration(math.ceil((end - start) / (MAX_POINTS - 1)))
        raise InputError(
            f"{points} steps exceed Prometheus's {MAX_POINTS} points per series; "
            f"use a step of at least {minimum}",
            field="step",
        )
    return [start + i * step for i in range(points)]


def lead_time(slos: Sequence[SLO], step: float) -> float:
    """How far before ``start`` to fetch so pending ``for`` periods are known."""
    longest = max((bw.for_ for slo in slos for bw in burnrate.policy_for(slo)), default=0.0)
    return math.ceil(longest / step - _EPS) * step if longest > 0 else 0.0


def parse_matrix(result: Iterable[dict]) -> dict[tuple[str, str], dict[int, float | None]]:
    """``(slo, kind)`` → step time (ms) → value, from a tagged range result."""
    out: dict[tuple[str, str], dict[int, float | None]] = {}
    for series in result:
        labels = series.get("metric", {})
        key = (labels.get(SLO_LABEL), labels.get(KIND_LABEL))
        if None in key:
            continue
        points = out.setdefault(key, {})
        for ts, raw in series.get("values", []):
            points[_ms(float(ts))] = sample_value(raw)
    return out


def add_window(
    window: float, matrix: Mapping[tuple[str, str], Mapping[int, float | None]], into: RangeCounts
) -> None:
    """Record one window's range result per SLO and step."""
    for name in {name for name, _kind in matrix}:
        errors = matrix.get((name, "errors"), {})
        total = matrix.get((name, "total"), {})
        steps = into.setdefault(name, {}).setdefault(window, {})
        for ms in set(errors) | set(total):
            steps[ms] = WindowCounts(errors=errors.get(ms), total=total.get(ms))


# ---------------------------------------------------------------- intervals (pure)


def condition_holds(
    threshold: float, long: WindowCounts | None, short: WindowCounts | None
) -> bool:
    """Both windows have traffic and an error ratio above ``threshold``."""
    for counts in (long, short):
        if counts is None or counts.total is None or counts.errors is None or counts.total <= 0:
            return False
        if counts.errors / counts.total <= threshold:
            return False
    return True


def firing_intervals(
    times: Sequence[float], holds: Sequence[bool], for_: float
) -> list[tuple[float, float | None]]:
    """``(start, end)`` spans where ``holds`` was true for ``for_`` seconds or longer.

    Prometheus semantics: pending from the first true step, firing once
    ``t − pending_since ≥ for_``, resolved at the first false step.
    """
    spans: list[tuple[float, float | None]] = []
    pending_since: float | None = None
    firing_since: float | None = None
    for t, holding in zip(times, holds, strict=True):
        if not holding:
            if firing_since is not None:
                spans.append((firing_since, t))
            pending_since = firing_since = None
            continue
        if pending_since is None:
            pending_since = t
        if firing_since is None and t - pending_since >= for_ - _EPS:
            firing_since = t
    if firing_since is not None:
        spans.append((firing_since, None))
    return spans


def slo_intervals(
    slo: SLO, windows: Mapping[float, Mapping[int, WindowCounts]], times: Sequence[float]
) -> list[AlertInterval]:
    """Every firing interval of every alert condition of ``slo`` over ``times``."""
    out: list[AlertInterval] = []
    for bw in burnrate.policy_for(slo):
        out.extend(_condition_intervals(slo, bw, windows, times))
    return sorted(out, key=lambda i: (i.start, i.severity, i.long_window))


def _condition_intervals(
    slo: SLO,
    bw: BurnWindow,
    windows: Mapping[float, Mapping[int, WindowCounts]],
    times: Sequence[float],
) -> list[AlertInterval]:
    period = windows.get(slo.window, {})
    long = windows.get(bw.long_window, {})
    short = windows.get(bw.short_window, {})
    holds = [
        condition_holds(
            window_threshold(slo, bw, period.get(_ms(t)), long.get(_ms(t))),
            long.get(_ms(t)),
            short.get(_ms(t)),
        )
        for t in times
    ]
    return [
        AlertInterval(slo.name, bw.severity, bw.long_window, bw.short_window, start, end)
        for start, end in firing_intervals(times, holds, bw.for_)
    ]


def missing_windows(slo: SLO, windows: Mapping[float, Mapping[int, WindowCounts]]) -> list[float]:
    """Alert windows whose total never had a value in the range."""
    return sorted(
        w
        for w in alert_windows(slo)
        if not any(c.total is not None for c in windows.get(w, {}).values())
    )


def compute_backtest(
    slos: Sequence[SLO], counts: RangeCounts, start: float, end: float, step: float
) -> Backtest:
    """Intervals per SLO from fetched range data (pure; the fetch grid may start early)."""
    times = step_grid(start - lead_time(slos, step), end, step)
    result = Backtest(start=start, end=end, step=step)
    for slo in slos:
        windows = counts.get(slo.name, {})
        if missing_windows(slo, windows):
            result.no_data.append(slo.name)
        result.intervals[slo.name] = [
            i for i in slo_intervals(slo, windows, times) if i.end is None or i.end > start
        ]
    return result


# ---------------------------------------------------------------- entry point


def backtest(
    slos: list[SLO], client: PromClient, start: float, end: float, step: float
) -> Backtest:
    """When each alert condition of each SLO would have fired between start and end."""
    check_unique_names(slos)
    # Prometheus works in milliseconds; align so our grid matches its timestamps.
    start, end, step = (round(v, 3) for v in (start, end, step))
    fetch_start = start - lead_time(slos, step)
    step_grid(fetch_start, end, step)  # validate before any request
    counts: RangeCounts = {}
    for window, query in plan_queries(slos, decision_windows):
        add_window(window, parse_matrix(client.query_range(query, fetch_start, end, step)), counts)
    return compute_backtest(slos, counts, start, end, step)


def fetch_range_counts(
    slos: Sequence[SLO],
    client: PromClient,
    start: float,
    end: float,
    step: float,
    windows_of: Callable[[SLO], Iterable[float]] = decision_windows,
) -> RangeCounts:
    """Errors and totals of every SLO per window and step, as ``backtest`` fetches them.

    For callers that need the series themselves (reports chart SLI and burn rate
    over time): the same planned, batched range queries, one per window, so the
    numbers are the ones the backtest decides on. ``compute_backtest`` can then
    run on the result without a second fetch (fetch from ``start − lead_time``).
    """
    check_unique_names(list(slos))
    step_grid(start, end, step)  # validate before any request
    counts: RangeCounts = {}
    for window, query in plan_queries(slos, windows_of):
        add_window(window, parse_matrix(client.query_range(query, start, end, step)), counts)
    return counts


def to_json(result: Backtest) -> dict:
    """The backtest as JSON-ready data, times as ISO 8601."""
    return {
        "start": iso_time(result.start),
        "end": iso_time(result.end),
        "step": format_duration(result.step),
        "no_data": list(result.no_data),
        "slos": {
            name: [
                {
                    "severity": i.severity,
                    "long_window": format_duration(i.long_window),
                    "short_window": format_duration(i.short_window),
                    "start": iso_time(i.start),
                    "end": None if i.end is None else iso_time(i.end),
                    "duration_s": None if i.end is None else i.end - i.start,
                }
                for i in intervals
            ]
            for name, intervals in result.intervals.items()
        },
    }
