"""Fill a ``ReportModel`` from Prometheus through the engine's one evaluation path.

Status comes from ``evaluator.evaluate`` at the report's end; the series from
``backtest.fetch_range_counts`` (the backtest's own batched range queries, one per
window); computed alert intervals from ``backtest.backtest``, which equals the rules'
own evaluation (in a time-scaled rehearsal, ``backtest.compute_backtest`` on the
charted numbers). Observed alerts are read from Prometheus's ``ALERTS`` series of the
generated rules. Everything but ``collect`` and ``computed_alerts`` is pure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from tokenslo.core import burnrate
from tokenslo.core.model import SLO, BurnWindow
from tokenslo.core.timescale import nominal_duration, scale_slo
from tokenslo.engine import backtest as bt
from tokenslo.engine.evaluator import (
    WindowCounts,
    alert_windows,
    decision_windows,
    evaluate,
    window_threshold,
)
from tokenslo.errors import InputError
from tokenslo.prometheus.client import PromClient, sample_value
from tokenslo.reports.model import (
    AlertSpan,
    Experiment,
    FaultInterval,
    ReportModel,
    Series,
    SLOSeries,
    Threshold,
)
from tokenslo.rules import conventions as conv

ALERTS_QUERY = f'ALERTS{{alertname="{conv.BURN_ALERT}", alertstate="firing"}}'


# ---------------------------------------------------------------- SLO windows (pure)


def sli_window_of(slo: SLO, override: float | None = None) -> float:
    """Window of the SLI line: the override, else the shortest alert window (the most
    responsive one the alerts use), else the period."""
    if override is not None:
        return override
    return min(alert_windows(slo), default=slo.window)


def window_pair(long_window: float, short_window: float, time_scale: float) -> str:
    """An alert condition's scaled windows spelled as the SLO file spells them (``1h/5m``)."""
    return "/".join(nominal_duration(w, time_scale) for w in (long_window, short_window))


def thresholds_of(
    slo: SLO,
    time_scale: float = 1.0,
    windows: Mapping[float, Mapping[int, WindowCounts]] | None = None,
    times: Sequence[float] = (),
) -> tuple[tuple[Threshold, ...], ...]:
    """``(sli_thresholds, burn_thresholds)``: one line per alert condition. A
    traffic-aware SLO's lines move with the traffic: per step of ``times``, from the
    period's and the long window's event counts in ``windows`` (as its rules compute
    them, ``burnrate.threshold_at``); its label says so, its ``value`` is the static one."""
    sli_lines, burn_lines = [], []
    for bw in burnrate.policy_for(slo):
        factor = burnrate.factor_of(slo, bw)
        windows_ = window_pair(bw.long_window, bw.short_window, time_scale)
        static = burnrate.threshold_of(slo, bw)
        if not slo.alerting.traffic_aware:
            label = f"{bw.severity} {windows_} ×{factor:g}"
            sli_lines.append(Threshold(label, bw.severity, 1.0 - static))
            burn_lines.append(Threshold(label, bw.severity, factor))
            continue
        label = f"{bw.severity} {windows_} traffic-aware"
        moving = _moving_threshold(slo, bw, windows or {}, times)
        sli_points = tuple((t, None if v is None else 1.0 - v) for t, v in moving)
        burn_points = tuple((t, None if v is None else v / slo.error_budget) for t, v in moving)
        sli_lines.append(Threshold(label, bw.severity, 1.0 - static, sli_points))
        burn_lines.append(Threshold(label, bw.severity, factor, burn_points))
    return tuple(sli_lines), tuple(burn_lines)


def _moving_threshold(
    slo: SLO,
    bw: BurnWindow,
    windows: Mapping[float, Mapping[int, WindowCounts]],
    times: Sequence[float],
) -> list[tuple[float, float | None]]:
    """The condition's error-ratio threshold at every time (None where unreachable)."""
    period, long = windows.get(slo.window, {}), windows.get(bw.long_window, {})
    out: list[tuple[float, float | None]] = []
    for t in times:
        key = round(t * 1000)
        value = window_threshold(slo, bw, period.get(key), long.get(key))
        out.append((t, value if math.isfinite(value) else None))
    return out


# ---------------------------------------------------------------- series (pure)


def ratio_at(counts: WindowCounts | None) -> float | None:
    """Error ratio of one step; None without data or traffic (0/0 is no SLI)."""
    if counts is None or counts.errors is None or counts.total is None:
        return None
    ratio = burnrate.error_ratio(counts.errors, counts.total)
    return None if ratio is None or not math.isfinite(ratio) else max(0.0, ratio)


def window_series(
    steps: Mapping[int, WindowCounts], times: Sequence[float], value
) -> tuple[tuple[float, float | None], ...]:
    """``value(error_ratio)`` at every time of the grid (None where no ratio)."""
    out = []
    for t in times:
        ratio = ratio_at(steps.get(round(t * 1000)))
        out.append((t, None if ratio is None else value(ratio)))
    return tuple(out)


def slo_series(
    slo: SLO,
    windows: Mapping[float, Mapping[int, WindowCounts]],
    times: Sequence[float],
    sli_window: float,
    time_scale: float = 1.0,
) -> SLOSeries:
    """SLI over ``sli_window`` and burn rate per alert window, on the step grid."""
    budget = slo.error_budget
    sli = Series(
        f"SLI over {nominal_duration(sli_window, time_scale)}",
        window_series(windows.get(sli_window, {}), times, lambda r: 1.0 - r),
    )
    burn = tuple(
        Series(
            nominal_duration(w, time_scale),
            window_series(windows.get(w, {}), times, lambda r: r / budget),
        )
        for w in sorted(alert_windows(slo))
    )
    sli_lines, burn_lines = thresholds_of(slo, time_scale, windows, times)
    return SLOSeries(
        slo=slo.name,
        objective=slo.target,
        sli_window=nominal_duration(sli_window, time_scale),
        sli=sli,
        burn=burn,
        sli_thresholds=sli_lines,
        burn_thresholds=burn_lines,
    )


# ---------------------------------------------------------------- alert spans (pure)


def spans_from_backtest(result: bt.Backtest, time_scale: float = 1.0) -> list[AlertSpan]:
    return [
        AlertSpan(
            slo=i.slo,
            severity=i.severity,
            windows=window_pair(i.long_window, i.short_window, time_scale),
            start=max(i.start, result.start),
            end=i.end,
            source="backtest",
        )
        for intervals in result.intervals.values()
        for i in intervals
    ]


def spans_from_alerts_matrix(
    matrix: Iterable[dict], step: float, end: float, slos: Iterable[str]
) -> list[AlertSpan]:
    """Firing intervals from a range query of ``ALERTS``: consecutive samples form one
    span; a gap longer than a step ends it (the series is absent when not firing).
    Only alerts of ``slos`` are kept."""
    wanted = set(slos)
    spans: list[AlertSpan] = []
    for series in matrix:
        labels = series.get("metric", {})
        slo = labels.get(conv.SLO_LABEL)
        if slo not in wanted:
            continue
        times = sorted(
            float(ts) for ts, raw in series.get("values", []) if sample_value(raw) is not None
        )
        long, short = labels.get(conv.LONG_WINDOW_LABEL), labels.get(conv.SHORT_WINDOW_LABEL)
        windows = f"{long or '?'}/{short or '?'}"
        for first, last in _runs(times, step):
            spans.append(
                AlertSpan(
                    slo=slo,
                    severity=labels.get(conv.SEVERITY_LABEL, "?"),
                    windows=windows,
                    start=first,
                    end=None if last >= end - step / 2 else last + step,
                    source="prometheus",
                )
            )
    return sorted(spans, key=lambda s: (s.slo, s.start, s.severity))


def _runs(times: Sequence[float], step: float) -> list[tuple[float, float]]:
    runs: list[tuple[float, float]] = []
    for t in times:
        if runs and t - runs[-1][1] <= step * 1.5:
            runs[-1] = (runs[-1][0], t)
        else:
            runs.append((t, t))
    return runs


def source_of(url: str) -> str:
    """``host:port`` of the backend, never its credentials or scheme."""
    parts = urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or url


# ---------------------------------------------------------------- entry point (I/O)


def computed_alerts(
    slos: list[SLO],
    client: PromClient,
    counts: bt.RangeCounts,
    start: float,
    end: float,
    step: float,
    time_scale: float,
) -> bt.Backtest:
    """When the generated rules fire. At time scale 1 the backtest proper, which computes
    every window as the rules do (long windows summed from 5m counts, timeslices from
    slice judgements) and equals Prometheus' own evaluation; a time-scaled rehearsal's
    rules derive their long windows from scaled 5m counts the scaled SLO does not know,
    so it is decided from the charted counts."""
    if time_scale == 1:
        return bt.backtest(slos, client, start, end, step)
    return bt.compute_backtest(slos, counts, start, end, step)


def collect(
    slos: list[SLO],
    client: PromClient,
    start: float,
    end: float,
    step: float,
    *,
    title: str = "SLO report",
    faults: Sequence[FaultInterval] = (),
    experiments: Sequence[Experiment] = (),
    sli_window: float | None = None,
    time_scale: float = 1.0,
    interrupted: bool = False,
) -> ReportModel:
    """Everything a report about ``slos`` over [start, end] shows.

    ``time_scale`` divides every SLO window like the lab's ``rules_time_scale``
    so a compressed rehearsal is evaluated as its rules fire; ``sli_window`` is
    in real (scaled) seconds.
    """
    if end <= start:
        raise InputError("end must be after start", field="--end")
    if not math.isfinite(time_scale) or time_scale <= 0:
        raise InputError("time scale must be a positive number", field="--time-scale")
    start, end, step = (round(v, 3) for v in (start, end, step))
    # End on the step grid, so the status (instant query at ``end``) and the last
    # point of every chart are the same evaluation.
    end = round(start + math.floor((end - start) / step + 1e-9) * step, 3)
    if end <= start:
        raise InputError("the range must be at least one step long", field="--step")
    scaled = [scale_slo(slo, time_scale) for slo in slos]
    sli_windows = {s.name: sli_window_of(s, sli_window) for s in scaled}

    statuses = evaluate(scaled, client, at=end)
    fetch_start = start - bt.lead_time(scaled, step)
    counts = bt.fetch_range_counts(
        scaled,
        client,
        fetch_start,
        end,
        step,
        windows_of=lambda s: decision_windows(s) | {sli_windows[s.name]},
    )
    result = computed_alerts(scaled, client, counts, start, end, step, time_scale)
    times = bt.step_grid(start, end, step)
    series = {
        s.name: slo_series(s, counts.get(s.name, {}), times, sli_windows[s.name], time_scale)
        for s in scaled
    }
    observed = spans_from_alerts_matrix(
        client.query_range(ALERTS_QUERY, start, end, step), step, end, sli_windows
    )
    return ReportModel(
        title=title,
        start=start,
        end=end,
        step=step,
        generated_at=time.time(),
        statuses=statuses,
        series=series,
        alerts=spans_from_backtest(result, time_scale) + observed,
        faults=list(faults),
        experiments=list(experiments),
        interrupted=interrupted,
        source=source_of(client.url),
        time_scale=time_scale,
        notes=[f"no data in an alert window for SLO {name}" for name in result.no_data],
    )
