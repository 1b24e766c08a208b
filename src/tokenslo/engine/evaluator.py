"""The one SLO evaluation path: status, gate, backtest, chaos probes and reports call it.

Evaluation is three steps, the middle one the only I/O:

1. **Plan** (pure): the distinct windows every SLO needs — its period plus the
   long and short window of each alert condition — and, per window, one PromQL
   query holding the errors and totals of *every* SLO, each tagged with
   ``tokenslo_slo``/``tokenslo_kind`` labels via ``label_replace`` and joined
   with ``or``. The number of queries grows with distinct windows, not with
   SLOs × windows. A query over the size budget is split by size, never per SLO.
   A timeslices SLO's "errors" and "total" are its bad (mean-ratio: the sum of its
   slices' error ratios) and judged slices over the window (``slice_terms``), so
   everything below applies to it unchanged.
   A calendar SLO's budget window is the time since its period started
   (``budget_window``); its alert windows stay rolling.
2. **Fetch**: those queries, all at one pinned timestamp, so every number of a
   status describes the same instant.
3. **Compute** (pure): ``status_from_counts`` turns the numbers into an
   ``SLOStatus`` with the Workbook's multi-window, multi-burn-rate policy.

States, most severe first:

* ``no_data`` — the total series is absent for the period or an alert window, or a
  latency SLI's bucket is (its threshold is not a bucket boundary): we cannot tell
  whether the SLO holds, and "no data never passes a gate".
* ``no_traffic`` — the total is present but 0 over the period: nothing was
  measured. It is its own state (not ``ok``) so a dead service or a broken
  scrape never passes silently; commands exit 3 for it, like ``no_data``.
* ``page`` / ``ticket`` — a condition of that severity holds at the instant.
  ``for`` is not applied here (one instant cannot tell how long a condition has
  held); the backtest applies it.
* ``ok`` — none of the above.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal

from tokenslo.core import burnrate
from tokenslo.core.calendar import period_bounds
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, BurnWindow, LatencySLI
from tokenslo.core.promql import sli_exprs, slice_judgement_of
from tokenslo.core.windows import BASE_INTERVAL
from tokenslo.errors import CheckFailed, InputError, TokensloError, UnavailableError
from tokenslo.prometheus.client import PromClient, sample_value

SLO_LABEL = "tokenslo_slo"
KIND_LABEL = "tokenslo_kind"
# Characters of PromQL per request. Prometheus takes far more in a POST body;
# the budget keeps one request reasonable for query frontends (Thanos, Mimir).
DEFAULT_MAX_QUERY_CHARS = 512_000

State = Literal["ok", "ticket", "page", "no_data", "no_traffic"]
UNKNOWN_STATES = ("no_data", "no_traffic")


# ---------------------------------------------------------------- plan (pure)


def alert_windows(slo: SLO) -> set[float]:
    """Long and short windows of the SLO's alert conditions, in seconds."""
    return {w for bw in burnrate.policy_for(slo) for w in (bw.long_window, bw.short_window)}


def budget_window(slo: SLO, at: float | None = None) -> float:
    """The span the SLI and budget of a status cover: the rolling window, or for a
    calendar SLO evaluated at ``at`` the time since its period started (at least 1ms)."""
    if slo.calendar is None or at is None:
        return slo.window
    start, _end = period_bounds(slo.calendar, at)
    return max(round(at - start, 3), 0.001)


def status_windows(slo: SLO, at: float | None = None) -> set[float]:
    """Windows a status needs: the budget window (SLI, budget) plus every alert window,
    and the rolling window where a traffic-aware threshold needs its events."""
    rolling = {slo.window} if slo.alerting.traffic_aware else set()
    return {budget_window(slo, at)} | alert_windows(slo) | rolling


def decision_windows(slo: SLO) -> set[float]:
    """Windows deciding whether a condition holds: the alert windows, plus the period
    for a traffic-aware SLO (its threshold scales with the period's events)."""
    if slo.alerting.traffic_aware:
        return status_windows(slo)
    return alert_windows(slo)


def window_threshold(
    slo: SLO, bw: BurnWindow, period: WindowCounts | None, long: WindowCounts | None
) -> float:
    """``burnrate.threshold_at`` from fetched counts (absent counts stay None)."""
    return burnrate.threshold_at(
        slo, bw, None if period is None else period.total, None if long is None else long.total
    )


def check_unique_names(slos: Sequence[SLO]) -> None:
    """SLO names key the batched results, so two SLOs may not share one."""
    seen: set[str] = set()
    for slo in slos:
        if slo.name in seen:
            where = slo.source.file if slo.source else None
            line = slo.source.line if slo.source else None
            raise InputError(
                f"duplicate SLO name {slo.name!r}", file=where, line=line, field="name"
            )
        seen.add(slo.name)


def _promql_string(value: str) -> str:
    """A double-quoted PromQL string usable as a label_replace replacement.

    ``$`` is doubled because the replacement expands regex groups.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{escaped}"'


def tag(expr: str, slo_name: str, kind: str) -> str:
    """``expr`` with the constant labels that identify its SLO and kind."""
    inner = f'label_replace({expr}, "{SLO_LABEL}", {_promql_string(slo_name)}, "", "")'
    return f'label_replace({inner}, "{KIND_LABEL}", "{kind}", "", "")'


def slo_terms(slo: SLO, window: float) -> tuple[str, str]:
    """The SLO's tagged errors and total expressions over ``window`` (for a timeslices
    SLO: its bad and its judged slices, see ``slice_terms``)."""
    if slo.timeslices is not None:
        errors, total = slice_terms(slo, window)
    else:
        errors, total = sli_exprs(slo.sli, format_duration(window))
    return tag(errors, slo.name, "errors"), tag(total, slo.name, "total")


def slice_terms(slo: SLO, window: float) -> tuple[str, str]:
    """Bad and judged slices over ``window``, as the generated rules count them: the last
    slice is judged every rule interval (a subquery step of the same length); it is bad
    when its error ratio exceeds what the slice target allows (a mean-ratio SLO: its
    error ratio, so the "errors" sum the ratios), and not judged without events. With no
    slice judged the counts fall back to 0 when the raw counts over the window exist, so
    "no traffic" and "no data" stay apart as for occurrences."""
    bad = slice_judgement_expr(slo)
    span = f"[{format_duration(window)}:{format_duration(BASE_INTERVAL)}]"
    errors, total = sli_exprs(slo.sli, format_duration(window))
    return (
        f"(sum_over_time(({bad}){span}) or ({errors}) * 0)",
        f"(count_over_time(({bad}){span}) or ({total}) * 0)",
    )


def slice_judgement_expr(slo: SLO) -> str:
    """The slice judgement a timeslices SLO's rules record at every evaluation, from the
    raw counters (status and backtest query it)."""
    assert slo.timeslices is not None
    return slice_judgement_of(slo.sli, slo.timeslices, format_duration(slo.timeslices.window))


def window_queries(
    slos: Sequence[SLO], window: float, max_chars: int = DEFAULT_MAX_QUERY_CHARS
) -> list[str]:
    """PromQL for every SLO's errors and total over ``window``, joined with ``or``.

    Usually one query; more only when the text would exceed ``max_chars``.
    An SLO's two terms always stay in the same query.
    """
    joiner = " or "
    queries: list[str] = []
    current: list[str] = []
    size = 0
    for slo in slos:
        pair = joiner.join(slo_terms(slo, window))
        extra = len(pair) + (len(joiner) if current else 0)
        if current and size + extra > max_chars:
            queries.append(joiner.join(current))
            current, size = [], 0
            extra = len(pair)
        current.append(pair)
        size += extra
    if current:
        queries.append(joiner.join(current))
    return queries


def plan_queries(
    slos: Sequence[SLO],
    windows_of: Callable[[SLO], Iterable[float]] = status_windows,
    max_chars: int = DEFAULT_MAX_QUERY_CHARS,
) -> list[tuple[float, str]]:
    """``(window, query)`` pairs covering every window any SLO needs, shortest first.

    Each window's query holds only the SLOs that need that window.
    """
    needs: dict[float, list[SLO]] = {}
    for slo in slos:
        for window in sorted(set(windows_of(slo))):
            needs.setdefault(window, []).append(slo)
    return [
        (window, query)
        for window in sorted(needs)
        for query in window_queries(needs[window], window, max_chars)
    ]


# ---------------------------------------------------------------- fetch (I/O)


@dataclass(frozen=True)
class WindowCounts:
    """Errors and total over one window; None when the series was absent."""

    errors: float | None
    total: float | None


Counts = dict[str, dict[float, WindowCounts]]  # SLO name → window → counts


def parse_vector(result: Iterable[dict]) -> dict[tuple[str, str], float | None]:
    """``(slo, kind)`` → value from an instant query's tagged vector."""
    values: dict[tuple[str, str], float | None] = {}
    for series in result:
        labels = series.get("metric", {})
        key = (labels.get(SLO_LABEL), labels.get(KIND_LABEL))
        if None not in key and "value" in series:
            values[key] = sample_value(series["value"][1])
    return values


def counts_from_values(
    window: float, values: Mapping[tuple[str, str], float | None], into: Counts
) -> None:
    """Record one window's parsed values per SLO in ``into`` (absent stays absent)."""
    for name in {name for name, _kind in values}:
        into.setdefault(name, {})[window] = WindowCounts(
            errors=values.get((name, "errors")), total=values.get((name, "total"))
        )


def fetch_counts(slos: Sequence[SLO], client: PromClient, at: float) -> Counts:
    """Run the planned instant queries at ``at``: one per window (size permitting)."""
    counts: Counts = {}
    for window, query in plan_queries(slos, windows_of=lambda slo: status_windows(slo, at)):
        counts_from_values(window, parse_vector(client.query(query, at)), counts)
    return counts


# ---------------------------------------------------------------- compute (pure)


@dataclass(frozen=True)
class AlertStatus:
    """One policy condition at the evaluated instant."""

    severity: str
    long_window: float
    short_window: float
    factor: float  # burn rate the condition fires at (traffic-aware: at this instant)
    threshold: float  # error ratio it fires at: factor × (1 − objective); inf: unreachable
    long_burn: float | None
    short_burn: float | None
    firing: bool  # both windows above the threshold now (``for`` not applied)


@dataclass(frozen=True)
class SLOStatus:
    name: str
    service: str
    objective: float  # percent
    window: float  # period, seconds
    at: float  # unix time every number refers to
    sli: float | None
    error_ratio: float | None
    error_budget_remaining: float | None  # 1 = untouched, < 0 overspent
    burn_rates: dict[str, float | None]  # alert window ("1h") → burn rate
    time_to_exhaustion: float | None  # seconds at the burn rate of exhaustion_window
    exhaustion_window: str | None  # shortest page long window (else shortest long window)
    alerts: list[AlertStatus] = field(default_factory=list)
    state: State = "ok"
    reason: str = ""
    period_start: float | None = None  # calendar SLOs: unix start of the budget's period


def _ratio(counts: WindowCounts | None) -> float | None:
    if counts is None or counts.total is None or counts.errors is None:
        return None
    return burnrate.error_ratio(counts.errors, counts.total)


def _burn(slo: SLO, counts: WindowCounts | None) -> float | None:
    ratio = _ratio(counts)
    return None if ratio is None else burnrate.burn_rate(ratio, slo.objective)


def _missing(counts: WindowCounts | None) -> bool:
    return counts is None or counts.total is None or counts.errors is None


def exhaustion_window(policy: Sequence[BurnWindow]) -> float | None:
    """The long window whose burn rate predicts exhaustion: the fastest page's.

    Falls back to the shortest long window when paging is off; None without a policy.
    """
    pages = [bw.long_window for bw in policy if bw.severity == "page"]
    candidates = pages or [bw.long_window for bw in policy]
    return min(candidates) if candidates else None


def alert_status(slo: SLO, bw: BurnWindow, counts: Mapping[float, WindowCounts]) -> AlertStatus:
    threshold = window_threshold(slo, bw, counts.get(slo.window), counts.get(bw.long_window))
    long_ratio = _ratio(counts.get(bw.long_window))
    short_ratio = _ratio(counts.get(bw.short_window))
    firing = (
        long_ratio is not None
        and short_ratio is not None
        and long_ratio > threshold
        and short_ratio > threshold
    )
    return AlertStatus(
        severity=bw.severity,
        long_window=bw.long_window,
        short_window=bw.short_window,
        factor=_factor(slo, bw, threshold),
        threshold=threshold,
        long_burn=_burn(slo, counts.get(bw.long_window)),
        short_burn=_burn(slo, counts.get(bw.short_window)),
        firing=firing,
    )


def _factor(slo: SLO, bw: BurnWindow, threshold: float) -> float:
    """The burn rate the condition fires at: the policy's, or for a traffic-aware SLO the
    one its threshold at this instant amounts to."""
    if slo.alerting.traffic_aware:
        return threshold / slo.error_budget
    return burnrate.factor_of(slo, bw)


def _state(
    slo: SLO, counts: Mapping[float, WindowCounts], alerts: Sequence[AlertStatus], at: float
) -> tuple[State, str]:
    missing = sorted(w for w in status_windows(slo, at) if _missing(counts.get(w)))
    if missing:
        spans = ", ".join(format_duration(w) for w in missing)
        if all(counts.get(w) is not None and counts[w].total is not None for w in missing):
            return "no_data", f"no data: {_errors_series(slo)} absent over {spans}"
        return "no_data", f"no data: total series absent over {spans}"
    period = budget_window(slo, at)
    period_total = counts[period].total
    if period_total is not None and period_total <= 0:
        return "no_traffic", f"no traffic: total is 0 over {format_duration(period)}"
    for severity in ("page", "ticket"):
        firing = [a for a in alerts if a.severity == severity and a.firing]
        if firing:
            return severity, f"{severity}: " + "; ".join(_describe(a) for a in firing)
    return "ok", "no alert condition holds"


def _errors_series(slo: SLO) -> str:
    """What an absent errors term beside a present total means, for the reason text."""
    if isinstance(slo.sli, LatencySLI):
        return (
            f"bucket le={slo.sli.threshold:g} of {slo.sli.metric} (is the threshold a bucket "
            "boundary? `slo validate --prometheus` checks)"
        )
    return "errors series"


def _describe(alert: AlertStatus) -> str:
    return (
        f"burn {alert.long_burn:.3g} over {format_duration(alert.long_window)} and "
        f"{alert.short_burn:.3g} over {format_duration(alert.short_window)} "
        f"exceed {alert.factor:.3g}"
    )


def status_from_counts(slo: SLO, counts: Mapping[float, WindowCounts], at: float) -> SLOStatus:
    """The status of ``slo`` from its fetched numbers (window seconds → counts)."""
    policy = burnrate.policy_for(slo)
    period = budget_window(slo, at)
    ratio = _ratio(counts.get(period))
    budget = None if ratio is None else burnrate.error_budget_remaining(ratio, slo.objective)
    burns = {format_duration(w): _burn(slo, counts.get(w)) for w in sorted(alert_windows(slo))}
    exhaust = exhaustion_window(policy)
    exhaust_burn = None if exhaust is None else _burn(slo, counts.get(exhaust))
    ttx = None
    if budget is not None and (budget <= 0 or exhaust_burn is not None):
        ttx = burnrate.time_to_exhaustion(budget, exhaust_burn or 0.0, period_length(slo, at))
    alerts = [alert_status(slo, bw, counts) for bw in policy]
    state, reason = _state(slo, counts, alerts, at)
    return SLOStatus(
        name=slo.name,
        service=slo.service,
        objective=slo.objective,
        window=period,
        at=at,
        sli=None if ratio is None else 1.0 - ratio,
        error_ratio=ratio,
        error_budget_remaining=budget,
        burn_rates=burns,
        time_to_exhaustion=ttx,
        exhaustion_window=None if exhaust is None else format_duration(exhaust),
        alerts=alerts,
        state=state,
        reason=reason,
        period_start=None if slo.calendar is None else period_bounds(slo.calendar, at)[0],
    )


def period_length(slo: SLO, at: float) -> float:
    """The whole budget period: the rolling window, or the calendar period holding ``at``."""
    if slo.calendar is None:
        return slo.window
    start, end = period_bounds(slo.calendar, at)
    return end - start


# ---------------------------------------------------------------- entry points


def evaluate(slos: list[SLO], client: PromClient, at: float | None = None) -> list[SLOStatus]:
    """Status of every SLO at one instant (``at``, default now — fixed once)."""
    check_unique_names(slos)
    at = time.time() if at is None else at
    counts = fetch_counts(slos, client, at)
    return [status_from_counts(slo, counts.get(slo.name, {}), at) for slo in slos]


def evaluate_window(
    slos: list[SLO], client: PromClient, window: float, at: float
) -> dict[str, WindowCounts | None]:
    """Errors and total of every SLO over one ad-hoc ``window`` ending at ``at``.

    For the load-test gate, whose window is the test's duration rather than an
    alert window: same plan, queries and parsing as ``evaluate``. An SLO whose
    series were absent maps to None.
    """
    check_unique_names(slos)
    counts: Counts = {}
    for span, query in plan_queries(slos, windows_of=lambda _slo: (window,)):
        counts_from_values(span, parse_vector(client.query(query, at)), counts)
    return {slo.name: counts.get(slo.name, {}).get(window) for slo in slos}


def window_burn(slo: SLO, counts: WindowCounts | None) -> float | None:
    """Burn rate of ``slo`` from one window's counts (None without data or traffic)."""
    if counts is None or not counts.total:
        return None
    return _burn(slo, counts)


def verdict(statuses: Sequence[SLOStatus]) -> TokensloError | None:
    """The error a gate-like command ends with, or None when all are ok/ticket.

    A page is a definite failure (exit 1) and wins over unknowns; otherwise
    any no_data/no_traffic SLO makes the result unknown (exit 3).
    """
    paging = [s.name for s in statuses if s.state == "page"]
    if paging:
        return CheckFailed(f"paging: {', '.join(paging)}")
    unknown = unknown_message(statuses)
    return UnavailableError(unknown) if unknown else None


def unknown_message(statuses: Sequence[SLOStatus]) -> str | None:
    """One line naming every SLO without data or traffic, or None."""
    parts = []
    for state in UNKNOWN_STATES:
        names = [s.name for s in statuses if s.state == state]
        if names:
            parts.append(f"{state.replace('_', ' ')} for SLO(s): {', '.join(names)}")
    return "; ".join(parts) + " (no data never passes)" if parts else None


def iso_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: float | None) -> float | None:
    """JSON has no Infinity/NaN: keep only finite numbers."""
    return value if value is not None and math.isfinite(value) else None


def to_json(statuses: Sequence[SLOStatus]) -> list[dict]:
    """Statuses as JSON-ready dicts (windows spelled like ``1h``; time as ISO 8601)."""
    out = []
    for status in statuses:
        row = asdict(status)
        row["at"] = iso_time(status.at)
        row["window"] = format_duration(status.window)
        del row["period_start"]  # only calendar SLOs have one
        if status.period_start is not None:
            row["period_start"] = iso_time(status.period_start)
        row["burn_rates"] = {w: _finite(v) for w, v in status.burn_rates.items()}
        row["alerts"] = [
            {
                **asdict(alert),
                "long_window": format_duration(alert.long_window),
                "short_window": format_duration(alert.short_window),
                "factor": _finite(alert.factor),
                "threshold": _finite(alert.threshold),
                "long_burn": _finite(alert.long_burn),
                "short_burn": _finite(alert.short_burn),
            }
            for alert in status.alerts
        ]
        for key in ("sli", "error_ratio", "error_budget_remaining", "time_to_exhaustion"):
            row[key] = _finite(row[key])
        out.append(row)
    return out
