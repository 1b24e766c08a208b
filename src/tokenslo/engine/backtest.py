"""Replay a past time range: when would each alert condition have fired?

Range queries, so the cost is one request per SLO and series it needs (per
``MAX_POINTS`` chunk) for the whole range rather than one per step. Unlike the
evaluator's instant queries they are not batched across SLOs (a range query of many
SLOs joined with ``or`` costs Prometheus far more than the SLOs one by one); a few
run at once instead. The interval computation is pure and works on per-step error
ratios over the fetched step grid.

Firing follows Prometheus's ``for``: a condition (both windows' error ratio
above the threshold) must hold at consecutive steps for at least ``for_``
seconds before it counts; the interval starts at the first step where that is
true and ends at the first step where the condition no longer holds (a step
without data ends it too, as an absent rule result would). To know whether a
condition was already pending when the range starts, the fetch begins
``max(for_)`` (rounded up to whole steps) earlier; an interval may therefore
start slightly before ``start``. ``end`` is None when still firing at the end.

Windows are computed as the generated rules compute them (``tokenslo.core.windows``):
short windows straight from the counters at each step; long (derived) windows as
the sum of the 5m counts at every rule evaluation in the window, so the ratio an
alert compares is the deployed rule's, smear included. The 5m counts are fetched
on the rule-evaluation grid (every ``interval``, anchored on the steps) and summed
locally with prefix sums; asking Prometheus for the sums would re-add the whole
window at every step. Short windows come back as ratios above the SLO's lowest
threshold only, so a healthy month costs almost no transfer; and a condition's
costlier window (Prometheus reads every sample of it at every step) is only asked
for around the steps where its cheaper window is above the threshold, since the
condition cannot hold anywhere else. Traffic-aware SLOs (``backtest_traffic_aware``)
need counts at every step instead: their exact windows in full, and the same 5m sums
for derived windows and for the events of the period and long window their moving
threshold divides.

A timeslices SLO's windows count slice judgements instead (``add_slice_ratios``): the
judgement its rules record at every evaluation (1 bad, 0 good, absent without events)
is fetched once on the rule-evaluation grid, and each window's ratio is its bad
judgements over its judgements, summed with prefix sums as the rules'
``sum_over_time``/``count_over_time`` do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from tokenslo.core import burnrate
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, BurnWindow
from tokenslo.core.promql import sli_exprs
from tokenslo.core.windows import (
    BASE_INTERVAL,
    BASE_WINDOW,
    Prefix,
    is_derived,
    prefix_sums,
    sums_from_prefix,
)
from tokenslo.engine.evaluator import (
    DEFAULT_MAX_QUERY_CHARS,
    KIND_LABEL,
    SLO_LABEL,
    WindowCounts,
    alert_windows,
    check_unique_names,
    decision_windows,
    iso_time,
    plan_queries,
    slice_judgement_expr,
    tag,
    window_threshold,
)
from tokenslo.errors import InputError, TokensloError
from tokenslo.prometheus.client import PromClient, sample_value

MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series
MAX_STEPS = 1_000_000  # steps one backtest holds in memory (fetched in MAX_POINTS chunks)
_EPS = 1e-6
KINDS = ("errors", "total")  # what sli_exprs returns, in order

# SLO name → window seconds → step time (ms) → counts
RangeCounts = dict[str, dict[float, dict[int, WindowCounts]]]
# window seconds → error ratio per step of the grid (NaN: none, or not above any threshold)
Ratios = dict[float, list[float]]


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


def step_grid(start: float, end: float, step: float, limit: int | None = MAX_POINTS) -> list[float]:
    """Evaluation times of a range query: ``start, start+step, … ≤ end``; at most ``limit``."""
    if step <= 0:
        raise InputError("step must be positive", field="step")
    if end < start:
        raise InputError("end is before start", field="end")
    points = math.floor((end - start) / step + _EPS) + 1
    if limit is not None and points > limit:
        minimum = format_duration(math.ceil((end - start) / (limit - 1)))
        what = "Prometheus's" if limit == MAX_POINTS else "the backtest's"
        raise InputError(
            f"{points} steps exceed {what} {limit} points per series; "
            f"use a step of at least {minimum}",
            field="step",
        )
    return [start + i * step for i in range(points)]


def chunks(start: float, end: float, step: float) -> list[tuple[float, float]]:
    """``(start, end)`` of consecutive range queries of at most ``MAX_POINTS`` steps each,
    together covering exactly the steps of ``step_grid(start, end, step)``."""
    span = (MAX_POINTS - 1) * step
    out = []
    while True:
        stop = min(start + span, end)
        out.append((start, stop))
        if stop >= end - _EPS * step:
            return out
        start = round(stop + step, 3)


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


def ratio_of(counts: WindowCounts | None) -> float:
    """The error ratio an alert compares; NaN (never above a threshold) without traffic."""
    if counts is None or counts.total is None or counts.errors is None or counts.total <= 0:
        return math.nan
    return counts.errors / counts.total


def condition_holds(
    threshold: float, long: WindowCounts | None, short: WindowCounts | None
) -> bool:
    """Both windows have traffic and an error ratio above ``threshold``."""
    return ratio_of(long) > threshold and ratio_of(short) > threshold


def ratio_grid(
    windows: Mapping[float, Mapping[int, WindowCounts]], times: Sequence[float]
) -> Ratios:
    """Window → error ratio at each of ``times`` (NaN where there is none)."""
    ms = [_ms(t) for t in times]
    return {w: [ratio_of(steps.get(m)) for m in ms] for w, steps in windows.items()}


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


def slo_intervals(slo: SLO, ratios: Ratios, times: Sequence[float]) -> list[AlertInterval]:
    """Every firing interval of every alert condition of ``slo`` over ``times``."""
    out: list[AlertInterval] = []
    for bw in burnrate.policy_for(slo):
        long, short = ratios.get(bw.long_window), ratios.get(bw.short_window)
        if long is None or short is None:
            continue
        threshold = burnrate.threshold_of(slo, bw)
        holds = [a > threshold and b > threshold for a, b in zip(long, short, strict=True)]
        if not any(holds):
            continue
        out.extend(
            AlertInterval(slo.name, bw.severity, bw.long_window, bw.short_window, start, end)
            for start, end in firing_intervals(times, holds, bw.for_)
        )
    return sorted(out, key=lambda i: (i.start, i.severity, i.long_window))


def counted_intervals(
    slo: SLO,
    windows: Mapping[float, Mapping[int, WindowCounts]],
    times: Sequence[float],
    events: Mapping[float, Mapping[int, WindowCounts]] | None = None,
) -> list[AlertInterval]:
    """Every firing interval of a traffic-aware SLO, from its counts per window: its
    threshold moves with the events over the period and the long window at each step,
    so ratios alone cannot decide it. ``events``: where those two event counts come
    from when not ``windows`` (the rules' sums of 5m counts, ``summed_counts``)."""
    out: list[AlertInterval] = []
    for bw in burnrate.policy_for(slo):
        out.extend(_condition_intervals(slo, bw, windows, times, events))
    return sorted(out, key=lambda i: (i.start, i.severity, i.long_window))


def _condition_intervals(
    slo: SLO,
    bw: BurnWindow,
    windows: Mapping[float, Mapping[int, WindowCounts]],
    times: Sequence[float],
    events: Mapping[float, Mapping[int, WindowCounts]] | None = None,
) -> list[AlertInterval]:
    traffic = windows if events is None else events
    period = traffic.get(slo.window, {})
    n_long = traffic.get(bw.long_window, {})
    long = windows.get(bw.long_window, {})
    short = windows.get(bw.short_window, {})
    holds = [
        condition_holds(
            window_threshold(slo, bw, period.get(_ms(t)), n_long.get(_ms(t))),
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
    """Intervals per SLO from fetched range data (pure; the fetch grid may start early).
    Traffic-aware SLOs are decided from the counts, the others from their ratios."""
    times = step_grid(start - lead_time(slos, step), end, step, limit=None)
    static = [slo for slo in slos if not slo.alerting.traffic_aware]
    ratios = {slo.name: ratio_grid(counts.get(slo.name, {}), times) for slo in static}
    missing = {slo.name for slo in slos if missing_windows(slo, counts.get(slo.name, {}))}
    result = backtest_from_ratios(static, ratios, missing & names(static), times, start, end, step)
    for slo in slos:
        if slo.alerting.traffic_aware:
            intervals = counted_intervals(slo, counts.get(slo.name, {}), times)
            add_slo(result, slo, intervals, slo.name in missing)
    return result


def names(slos: Iterable[SLO]) -> set[str]:
    return {slo.name for slo in slos}


def backtest_from_ratios(
    slos: Sequence[SLO],
    ratios: Mapping[str, Ratios],
    missing: set[str],
    times: Sequence[float],
    start: float,
    end: float,
    step: float,
) -> Backtest:
    """Intervals per SLO from per-step error ratios over ``times`` (pure)."""
    result = Backtest(start=start, end=end, step=step)
    for slo in slos:
        intervals = slo_intervals(slo, ratios.get(slo.name, {}), times)
        add_slo(result, slo, intervals, slo.name in missing)
    return result


def add_slo(result: Backtest, slo: SLO, intervals: Iterable[AlertInterval], missing: bool) -> None:
    """One SLO's intervals into ``result``, leaving out those over before its start."""
    if missing:
        result.no_data.append(slo.name)
    result.intervals[slo.name] = [i for i in intervals if i.end is None or i.end > result.start]


# ---------------------------------------------------------------- entry point


def refuse_traffic_aware_timeslices(slos: Sequence[SLO]) -> None:
    """A traffic-aware threshold scales with event counts, which a bad-slice share has
    not (the spec checks and the rule generator reject the pair too): exit 2 rather
    than replay rules that cannot exist."""
    for slo in slos:
        if slo.timeslices is not None and slo.alerting.traffic_aware:
            where = slo.source
            raise InputError(
                f"SLO {slo.name!r} uses timeslices budgeting with traffic-aware burn rates,"
                " which count events; use burn_rate static",
                file=where.file if where else None,
                line=where.line if where else None,
                field="alerting.burn_rate",
            )


def backtest(
    slos: list[SLO],
    client: PromClient,
    start: float,
    end: float,
    step: float,
    interval: float = BASE_INTERVAL,
) -> Backtest:
    """When each alert of each SLO would have fired between start and end, had the
    generated rules been evaluated every ``interval`` (their group interval) on the steps.

    Requests, each for one SLO (see ``fetch_series``): its 5m errors and total, which
    the derived windows sum; per *gate* window (each condition's cheaper window: a
    derived one, else the shorter) its ratio over the whole range, returning only the
    steps where it is above the SLO's lowest threshold for that window; the other
    window of a condition only over the runs of steps where its gate is above the
    condition's threshold (elsewhere the condition cannot hold). Then one instant
    query per distinct smallest window to tell "no data" from "never above".
    """
    check_unique_names(slos)
    refuse_traffic_aware_timeslices(slos)
    # Prometheus works in milliseconds; align so our grid matches its timestamps.
    start, end, step = (round(v, 3) for v in (start, end, step))
    fetch_start = start - lead_time(slos, step)
    times = step_grid(fetch_start, end, step, limit=MAX_STEPS)  # validate before any request
    aware = [slo for slo in slos if slo.alerting.traffic_aware]
    if aware:
        counted = backtest_traffic_aware(aware, client, times, start, end, step, interval)
        slos = [slo for slo in slos if not slo.alerting.traffic_aware]
        if not slos:
            return counted
    else:
        counted = None
    ratios: dict[str, Ratios] = {slo.name: {} for slo in slos}
    sliced = [slo for slo in slos if slo.timeslices is not None]
    if sliced:  # their windows count slice judgements, fetched once per SLO
        add_slice_ratios(sliced, client, times, rule_spacing(step, interval), ratios)
    evented = [slo for slo in slos if slo.timeslices is None]
    long_ = [slo for slo in evented if derived_alert_windows(slo)]
    if long_:
        add_derived_ratios(long_, client, times, rule_spacing(step, interval), ratios)

    def unfetched_gates(slo: SLO) -> set[float]:
        return gate_windows(slo) - set(ratios[slo.name])

    gates = [
        ((slo.name, window), ratio_expr(slo, window), times)
        for slo in evented
        for window in sorted(unfetched_gates(slo))
    ]
    for (name, window), values in fetch_series(client, gates, step):
        if values is not None:
            ratios[name][window] = values
    by_name = {slo.name: slo for slo in evented}
    gated = [
        ((name, window, first), ratio_expr(by_name[name], window), times[first : last + 1])
        for window, names, (first, last) in gated_fetches(evented, ratios, times)
        for name in sorted(names)
    ]
    for (name, window, first), values in fetch_series(client, gated, step):
        if values is not None:
            into = ratios[name].setdefault(window, [math.nan] * len(times))
            into[first : first + len(values)] = values
    missing = absent_slos(slos, client, times, step)
    result = backtest_from_ratios(slos, ratios, missing, times, start, end, step)
    if counted is not None:
        result.intervals.update(counted.intervals)
        result.no_data.extend(counted.no_data)
    return result


def backtest_traffic_aware(
    slos: Sequence[SLO],
    client: PromClient,
    times: Sequence[float],
    start: float,
    end: float,
    step: float,
    interval: float = BASE_INTERVAL,
) -> Backtest:
    """``backtest`` of traffic-aware SLOs, whose thresholds need event counts at every
    step, not ratios above a fixed line. As their rules: exact windows counted from the
    raw counters (one batched range query per window); derived windows, and the
    threshold's N_period / N_long (``tokenslo:slo_traffic_ratio``), as sums of the 5m
    counts at every rule evaluation, fetched once per SLO (``summed_counts``). An SLO
    whose period is itself exact (6h or less) takes N_period / N_long from the raw
    counts of both windows instead."""
    counts = fetch_range_counts(slos, client, times[0], end, step, windows_of=_raw_windows)
    summed = [slo for slo in slos if is_derived(slo.window)]
    events: dict[str, dict[float, dict[int, WindowCounts]]] = {}
    if summed:
        events = summed_counts(summed, client, times, rule_spacing(step, interval), counts)
    result = Backtest(start=start, end=end, step=step)
    for slo in slos:
        windows = counts.get(slo.name, {})
        intervals = counted_intervals(slo, windows, times, events.get(slo.name))
        add_slo(result, slo, intervals, bool(missing_windows(slo, windows)))
    return result


def _raw_windows(slo: SLO) -> set[float]:
    """Windows a traffic-aware SLO counts from the raw counters: its exact alert windows,
    and its period when exact too (its threshold's counts then come from these)."""
    exact = exact_alert_windows(slo)
    return exact if is_derived(slo.window) else exact | {slo.window}


def summed_counts(
    slos: Sequence[SLO],
    client: PromClient,
    times: Sequence[float],
    spacing: float,
    into: RangeCounts,
) -> RangeCounts:
    """Traffic-aware SLOs' 5m errors and events, fetched once per SLO every ``spacing``
    from one period before the first step, summed as their rules sum them: each derived
    alert window's counts go ``into`` the SLO's window counts (their ratio is the
    rules'), and the returned counts hold the events the threshold divides, over the
    period and over every long window (the rules' traffic ratio sums both)."""
    at, left_closed, base = base_counts(slos, client, times, spacing, max(s.window for s in slos))
    by_name = {slo.name: slo for slo in slos}
    events: RangeCounts = {}
    ms = [_ms(t) for t in times]

    def sums(prefix: Prefix | None, window: float) -> list[float | None]:
        if prefix is None:
            return [None] * len(at)
        return sums_from_prefix(prefix, spacing, window, at, left_closed)

    for name, kinds in base.items():
        slo = by_name[name]
        errors, total = (kinds.get(k) for k in KINDS)
        errors_prefix = None if errors is None else prefix_sums(errors)
        total_prefix = None if total is None else prefix_sums(total)
        longs = {bw.long_window for bw in burnrate.policy_for(slo)}
        for window in sorted(longs | {slo.window}):
            events.setdefault(name, {})[window] = {
                m: WindowCounts(errors=None, total=n)
                for m, n in zip(ms, sums(total_prefix, window), strict=True)
            }
        for window in derived_alert_windows(slo):
            into.setdefault(name, {})[window] = {
                m: WindowCounts(errors=e, total=n)
                for m, e, n in zip(
                    ms, sums(errors_prefix, window), sums(total_prefix, window), strict=True
                )
            }
    return events


def _cost(window: float) -> float:
    """Points Prometheus reads per step for a window (a derived one is summed here)."""
    return 0.0 if is_derived(window) else window


def gate_windows(slo: SLO) -> set[float]:
    """Exact windows fetched over the whole range: each condition's cheaper window."""
    gates = {min(bw.long_window, bw.short_window, key=_cost) for bw in burnrate.policy_for(slo)}
    return {w for w in gates if not is_derived(w)}


MERGE_GAP = 60  # steps: gated runs closer than this are fetched as one
MAX_RUNS = 40  # more gated runs than this for one SLO: fetch its whole range instead


def step_runs(indices: Iterable[int], gap: int = MERGE_GAP) -> list[tuple[int, int]]:
    """Sorted step indices as ``(first, last)`` runs, merging runs under ``gap`` apart."""
    runs: list[list[int]] = []
    for i in sorted(set(indices)):
        if runs and i - runs[-1][1] <= gap:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [(a, b) for a, b in runs]


def gated_fetches(
    slos: Sequence[SLO], ratios: Mapping[str, Ratios], times: Sequence[float]
) -> list[tuple[float, set[str], tuple[int, int]]]:
    """``(window, SLO names, (first, last) step)`` still to fetch: each condition's
    other exact window, only at the steps where its gate's ratio is above the
    condition's threshold (pure). Runs are per SLO (one name each): runs shared by
    many SLOs would make each fetch the others' steps, and past ``MAX_RUNS`` the
    whole range, as a month of 50 SLOs with one incident each did."""
    wanted: dict[float, dict[str, set[int]]] = {}
    for slo in slos:
        fetched = set(ratios.get(slo.name, {}))
        for bw in burnrate.policy_for(slo):
            gate = min(bw.long_window, bw.short_window, key=_cost)
            other = bw.short_window if gate == bw.long_window else bw.long_window
            if other in fetched or is_derived(other) or gate not in fetched:
                continue
            threshold = burnrate.threshold_of(slo, bw)
            steps = wanted.setdefault(other, {}).setdefault(slo.name, set())
            steps.update(i for i, r in enumerate(ratios[slo.name][gate]) if r > threshold)
    out: list[tuple[float, set[str], tuple[int, int]]] = []
    for window, by_slo in sorted(wanted.items()):
        for name, steps in sorted(by_slo.items()):
            runs = step_runs(steps)
            if len(runs) > MAX_RUNS:
                runs = [(0, len(times) - 1)]
            out.extend((window, {name}, run) for run in runs)
    return out


def exact_alert_windows(slo: SLO) -> set[float]:
    """Alert windows the rules count straight from the counters."""
    return {w for w in alert_windows(slo) if not is_derived(w)}


def derived_alert_windows(slo: SLO) -> set[float]:
    """Alert windows the rules sum from 5m counts."""
    return {w for w in alert_windows(slo) if is_derived(w)}


def lowest_threshold(slo: SLO, window: float) -> float:
    """The lowest threshold any condition of ``slo`` compares ``window``'s ratio with."""
    return min(
        burnrate.threshold_of(slo, bw)
        for bw in burnrate.policy_for(slo)
        if window in (bw.long_window, bw.short_window)
    )


def ratio_expr(slo: SLO, window: float) -> str:
    """The SLO's error ratio over ``window``, as its rule divides errors by events,
    kept only where above its lowest threshold for the window: a healthy range returns
    almost nothing, and a missing step can hold no condition."""
    errors, total = sli_exprs(slo.sli, format_duration(window))
    return f"({errors}) / ({total}) > {lowest_threshold(slo, window)!r}"


def joined(terms: Sequence[str], max_chars: int) -> list[str]:
    """``terms`` joined with ``or`` into as few queries of at most ``max_chars`` as fit.

    For instant queries only. Each query is a balanced tree of ``or``: Prometheus
    evaluates ``a or b or c …`` left to right, copying the growing left side, so a
    chain of n terms costs n². Range queries are not batched at all (``fetch_series``).
    """
    groups: list[list[str]] = [[]]
    size = 0
    for term in terms:
        if groups[-1] and size + len(term) + 8 > max_chars:
            groups.append([])
            size = 0
        groups[-1].append(term)
        size += len(term) + 8
    return [or_tree(group) for group in groups if group]


def or_tree(terms: Sequence[str]) -> str:
    """``terms`` as a balanced, parenthesised ``or`` tree (same result as a chain)."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({or_tree(terms[:middle])} or {or_tree(terms[middle:])})"


def absent_slos(
    slos: Sequence[SLO], client: PromClient, times: Sequence[float], step: float
) -> set[str]:
    """SLOs whose total never had a value at any step over some alert window.

    A total present over the smallest window at a step is present over every longer
    one (and every 5m sum) there, so one count over the range per smallest window
    settles most SLOs; the others are asked window by window.
    """
    span = format_duration(times[-1] - times[0] + step)
    resolution = format_duration(step)

    def present(candidates: Iterable[tuple[SLO, float]]) -> set[str]:
        by_window: dict[float, list[str]] = {}
        for slo, window in candidates:
            total = sli_exprs(slo.sli, format_duration(window))[1]
            count = f"count_over_time(({total})[{span}:{resolution}])"
            by_window.setdefault(window, []).append(tag(count, slo.name, "total"))
        found: set[str] = set()
        for terms in by_window.values():
            for query in joined(terms, DEFAULT_MAX_QUERY_CHARS):
                for series in client.query(query, times[-1]):
                    found.add(series.get("metric", {}).get(SLO_LABEL, ""))
        return found

    with_windows = [slo for slo in slos if alert_windows(slo)]
    seen = present((slo, min(alert_windows(slo))) for slo in with_windows)
    missing: set[str] = set()
    for slo in with_windows:
        if slo.name in seen:
            continue
        for window in sorted(alert_windows(slo)):
            if slo.name not in present([(slo, window)]):
                missing.add(slo.name)
                break
    return missing


def rule_spacing(step: float, interval: float) -> float:
    """Spacing of the 5m samples a derived window sums: the rules' evaluation
    interval when the step is a whole multiple of it (exactly the deployed rules);
    otherwise the step itself (the closest grid the steps share)."""
    multiple = step / interval
    return interval if multiple >= 1 - _EPS and abs(multiple - round(multiple)) < _EPS else step


def fetch_series[K: Hashable](
    client: PromClient, jobs: Sequence[tuple[K, str, Sequence[float]]], step: float
) -> Iterator[tuple[K, list[float] | None]]:
    """Per ``(key, query, times)`` job, in order: ``key`` and the query's value at each
    of ``times`` (NaN where absent), or None when it returned nothing at all.

    One range query per job and ``MAX_POINTS`` chunk, a few in flight at once
    (``PromClient.query_ranges``: Prometheus runs each query on one core). A query is
    one SLO's errors, total or ratio, so it has one series and needs no labels to tell
    it apart. Not one query of every SLO joined with ``or``: Prometheus 2 evaluates
    that in time growing faster than the number of SLOs (one 11,000-step chunk of 50
    SLOs' 5m counts: 11 s of its CPU; the 50 queries alone: under 2 s).
    """
    plans = [(key, expr, times, chunks(times[0], times[-1], step)) for key, expr, times in jobs]
    answers = client.query_ranges(
        (expr, first, last, step) for _key, expr, _times, spans in plans for first, last in spans
    )
    step_ms = _ms(step)
    for key, _expr, times, spans in plans:
        values: list[float] | None = None
        for _span in spans:
            for series in next(answers):
                if values is None:
                    values = [math.nan] * len(times)
                _place(values, series.get("values", []), _ms(times[0]), step_ms)
        yield key, values


def _place(values: list[float], points: Sequence[Sequence], first_ms: int, step_ms: int) -> None:
    """A series' ``[ts, "value"]`` points into ``values`` at their step indices; a run
    without gaps (the usual case) in one slice."""
    if not points:
        return
    lo = (_ms(float(points[0][0])) - first_ms) // step_ms
    hi = (_ms(float(points[-1][0])) - first_ms) // step_ms
    if hi - lo + 1 == len(points):
        values[lo : hi + 1] = map(float, map(itemgetter(1), points))
        return
    for ts, raw in points:
        values[(_ms(float(ts)) - first_ms) // step_ms] = float(raw)


def ranges_left_closed(client: PromClient) -> bool:
    """Whether a sample exactly one range old is selected: Prometheus before 3.0 (or
    a server not saying its version) includes it; 3.0 made range selectors left-open."""
    try:
        return int(client.version().split(".")[0]) < 3
    except (TokensloError, ValueError):
        return True


def base_grid(
    times: Sequence[float], reach: float, spacing: float
) -> tuple[list[float], list[int]]:
    """The rule-evaluation grid (every ``spacing``) from ``reach`` seconds before the
    first step to the last, holding every step, and the index of each step in it."""
    base_start = round(times[0] - math.ceil(reach / spacing - _EPS) * spacing, 3)
    base_times = step_grid(base_start, times[-1], spacing, limit=MAX_STEPS)
    return base_times, [round((t - base_start) / spacing) for t in times]


def add_derived_ratios(
    slos: Sequence[SLO],
    client: PromClient,
    times: Sequence[float],
    spacing: float,
    into: dict[str, Ratios],
) -> None:
    """Each SLO's derived-window ratios at ``times``, summed from its 5m counts as its
    rules sum them. The 5m counts are fetched every ``spacing`` from one longest
    window before the first step, on a grid holding every step; an SLO with a 5m
    alert window gets that window's ratio from them too (the same numbers)."""
    reach = max(w for slo in slos for w in derived_alert_windows(slo))
    at, left_closed, base = base_counts(slos, client, times, spacing, reach)
    for slo in slos:
        errors, total = (base.get(slo.name, {}).get(kind) for kind in KINDS)
        if errors is not None and total is not None:
            into.setdefault(slo.name, {}).update(
                derived_ratios(slo, errors, total, spacing, at, left_closed)
            )


def base_counts(
    slos: Sequence[SLO], client: PromClient, times: Sequence[float], spacing: float, reach: float
) -> tuple[list[int], bool, dict[str, dict[str, list[float] | None]]]:
    """Each SLO's 5m errors and total (``KINDS``) every ``spacing`` from ``reach`` before
    the first step, on a grid holding every step: ``(index of each step on that grid,
    whether the server's ranges are left-closed, SLO → kind → values)``; a kind that
    returned nothing is None."""
    base_times, at = base_grid(times, reach, spacing)
    jobs = [
        ((slo.name, kind), expr, base_times)
        for slo in slos
        for kind, expr in zip(KINDS, sli_exprs(slo.sli, format_duration(BASE_WINDOW)), strict=True)
    ]
    base: dict[str, dict[str, list[float] | None]] = {}
    for (name, kind), values in fetch_series(client, jobs, spacing):
        base.setdefault(name, {})[kind] = values
    return at, ranges_left_closed(client), base


def derived_ratios(
    slo: SLO,
    errors: Sequence[float],
    total: Sequence[float],
    spacing: float,
    at: Sequence[int],
    left_closed: bool,
) -> Ratios:
    """The SLO's derived-window ratios (and its 5m one, if an alert window) at the
    base-grid indices ``at``, from its 5m counts every ``spacing`` (pure)."""
    out: Ratios = {}
    if BASE_WINDOW in alert_windows(slo):  # the 5m ratio itself, at every step
        out[BASE_WINDOW] = sum_ratios(_present_at(errors, at), _present_at(total, at))
    errors_prefix, total_prefix = prefix_sums(errors), prefix_sums(total)
    for window in derived_alert_windows(slo):
        out[window] = sum_ratios(
            sums_from_prefix(errors_prefix, spacing, window, at, left_closed),
            sums_from_prefix(total_prefix, spacing, window, at, left_closed),
        )
    return out


def add_slice_ratios(
    slos: Sequence[SLO],
    client: PromClient,
    times: Sequence[float],
    spacing: float,
    into: dict[str, Ratios],
) -> None:
    """Each timeslices SLO's alert-window ratios at ``times``, as its rules count them:
    the slice judgement the rules record at every evaluation (``spacing`` apart; the
    same PromQL, from the raw counters) is fetched once per SLO from one longest window
    before the first step, then each window's bad judgements over its judgements is
    summed locally. An SLO whose judgement never had a value gets NaN everywhere."""
    reach = max(w for slo in slos for w in alert_windows(slo))
    base_times, at = base_grid(times, reach, spacing)
    left_closed = ranges_left_closed(client)
    by_name = {slo.name: slo for slo in slos}
    jobs = [(slo.name, slice_judgement_expr(slo), base_times) for slo in slos]
    for name, values in fetch_series(client, jobs, spacing):
        judgements = [math.nan] * len(base_times) if values is None else values
        into[name] = slice_ratios(by_name[name], judgements, spacing, at, left_closed)


def slice_ratios(
    slo: SLO, judgements: Sequence[float], spacing: float, at: Sequence[int], left_closed: bool
) -> Ratios:
    """A timeslices SLO's alert-window ratios at the base-grid indices ``at``, from its
    slice judgements every ``spacing`` (NaN: not judged) (pure): per window
    ``sum_over_time(judged[w]) / count_over_time(judged[w])``, as the rules record."""
    bad = prefix_sums(judgements)
    judged = prefix_sums([1.0 if v == v else math.nan for v in judgements])  # NaN != NaN
    return {
        window: sum_ratios(
            sums_from_prefix(bad, spacing, window, at, left_closed),
            sums_from_prefix(judged, spacing, window, at, left_closed),
        )
        for window in alert_windows(slo)
    }


def _present_at(values: Sequence[float], at: Sequence[int]) -> list[float | None]:
    """``values`` at indices ``at``, NaN (absent) as None."""
    return [v if v == v else None for v in map(values.__getitem__, at)]  # NaN != NaN


def sum_ratios(errors: Sequence[float | None], total: Sequence[float | None]) -> list[float]:
    """``errors / total`` per step as PromQL divides (x/0 is ±Inf, 0/0 NaN); NaN if absent."""
    return [
        e / n if n and e is not None else _divide_oddly(e, n)
        for e, n in zip(errors, total, strict=True)
    ]


def _divide_oddly(e: float | None, n: float | None) -> float:
    """``sum_ratios`` where either side is absent or the total is 0 (rare)."""
    if e is None or n is None:
        return math.nan
    return math.copysign(math.inf, e) if e else math.nan


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
