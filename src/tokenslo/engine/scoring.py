"""Score alert policies against labelled incidents: the Workbook's four measures. Pure.

Each policy is applied to each SLO (``tokenslo.spec.policy.apply``) and replayed over
the SLO's timeline with the backtest's own interval functions (``slo_intervals`` for
static thresholds, ``counted_intervals`` for traffic-aware ones), on the policy's
evaluation grid, with windows computed as the backtest computes them: windows up to
6h counted exactly, longer ones of static SLOs summed from the 5m counts at every
evaluation (``tokenslo.core.windows``), every window of traffic-aware SLOs counted.

Firing intervals of one severity that overlap are one *alert* (one notification, as
Alertmanager groups them). An alert *matches* an incident when it starts within
``[incident start, incident end + the alert's long window]`` (the latest such
incident). Then, per policy, SLO and severity (``page``, ``ticket``, ``any``):

- precision: alerts matching an incident that should alert / all alerts;
- recall: incidents that should alert with a matching alert / incidents that should alert;
- detection time: first matching alert's start − incident start;
- reset time: last matching alert's end − incident end (an alert still firing at the
  end of the range has none);
- budget before detection: errors between incident start and detection, as a share
  of the period's error budget.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from tokenslo.core import burnrate
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO
from tokenslo.core.windows import BASE_WINDOW, is_derived, prefix_sums, sums_from_prefix
from tokenslo.engine.backtest import (
    AlertInterval,
    base_grid,
    counted_intervals,
    slice_ratios,
    slo_intervals,
    sum_ratios,
)
from tokenslo.engine.evaluator import WindowCounts, decision_windows, iso_time
from tokenslo.engine.incidents import Incident, Timeline, errors_between, synthetic
from tokenslo.errors import InputError
from tokenslo.spec.policy import Policy, apply

SEVERITIES = ("page", "ticket", "any")


@dataclass(frozen=True)
class Alert:
    """Overlapping firing intervals of one severity (``any``: of all), merged."""

    severity: str
    start: float
    end: float | None  # None: still firing at the end of the range
    long_window: float  # of the condition that opened it: the matching tolerance


@dataclass(frozen=True)
class Outcome:
    """How one incident that should alert fared under one policy and severity."""

    incident: int  # index into the timeline's incidents
    detection: float | None  # seconds after the start; None: missed
    reset: float | None  # seconds after the end; None: missed or still firing
    budget_before: float  # share of the period budget burnt before detection (all if missed)


@dataclass(frozen=True)
class Score:
    policy: str
    slo: str
    severity: str
    alerts: int
    true_alerts: int
    outcomes: tuple[Outcome, ...]  # one per incident that should alert (``summarize``)


@dataclass(frozen=True)
class RealRange:
    """Where a real range's timelines come from; time 0 of every timeline is ``start``."""

    start: float  # unix seconds
    end: float
    step: float  # the timelines' resolution: the step of the fetched counts
    prometheus: str  # as shown (credentials redacted)
    incidents_file: str


@dataclass
class Scoring:
    days: float
    seed: int | None  # None: a real range (``real``)
    policies: list[Policy]
    real: RealRange | None = None
    no_data: list[str] = field(default_factory=list)  # SLOs of a real range without data
    gaps: dict[str, float] = field(default_factory=dict)  # real range: share of steps without
    timelines: dict[str, Timeline] = field(default_factory=dict)  # per SLO
    # (policy, SLO) → severity → alerts
    alerts: dict[tuple[str, str], dict[str, list[Alert]]] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)


# ---------------------------------------------------------------- replay


def evaluation_times(timeline: Timeline, interval: float, lead: float) -> list[float]:
    """Rule evaluations every ``interval`` from ``lead`` before 0 to the end."""
    first = -math.ceil(lead / interval) * interval
    count = math.floor((timeline.end - first) / interval + 1e-9) + 1
    return [first + i * interval for i in range(count)]


def _prefix(values: Sequence[float]) -> list[float]:
    return [0, *accumulate(values)]


class _Counts:
    """Errors and events over a window ending at each of ``times``, from prefix sums."""

    def __init__(self, timeline: Timeline, times: Sequence[float]):
        self.timeline = timeline
        self.errors = _prefix(timeline.errors)
        self.total = _prefix(timeline.total)
        last = len(timeline.errors)
        self.ends = [min(max(timeline.step_at(t), 0), last) for t in times]

    def over(self, window: float) -> tuple[list[float], list[float]]:
        k = round(window / self.timeline.resolution)
        e, n = self.errors, self.total
        starts = [max(h - k, 0) for h in self.ends]
        return (
            [float(e[h] - e[lo]) for h, lo in zip(self.ends, starts, strict=True)],
            [float(n[h] - n[lo]) for h, lo in zip(self.ends, starts, strict=True)],
        )


def _check_grid(timeline: Timeline, interval: float) -> None:
    steps = interval / timeline.resolution
    if abs(steps - round(steps)) > 1e-9:
        raise InputError(
            f"interval {interval:g}s is not a multiple of the timeline's {timeline.resolution:g}s",
            field="interval",
        )


def static_ratios(
    slo: SLO, timeline: Timeline, interval: float, times: Sequence[float]
) -> dict[float, list[float]]:
    """Error ratio per alert window at ``times``, as the rules compute them: exact up
    to 6h, derived windows summed from the 5m counts recorded at every evaluation."""
    windows = {w for bw in burnrate.policy_for(slo) for w in (bw.long_window, bw.short_window)}
    out: dict[float, list[float]] = {}
    derived = sorted(w for w in windows if is_derived(w))
    if derived:
        base_times, at = base_grid(times, max(derived), interval)
        errors, total = map(prefix_sums, _Counts(timeline, base_times).over(BASE_WINDOW))
        for w in derived:
            out[w] = sum_ratios(
                sums_from_prefix(errors, interval, w, at), sums_from_prefix(total, interval, w, at)
            )
    counts = _Counts(timeline, times)
    for w in sorted(windows - set(derived)):
        out[w] = sum_ratios(*counts.over(w))
    return out


def timeslice_ratios(
    slo: SLO, timeline: Timeline, interval: float, times: Sequence[float]
) -> dict[float, list[float]]:
    """A timeslices SLO's ratio per alert window at ``times``, as its rules compute them:
    the slice ending at every evaluation judged (``Timeslices.judge``), then each
    window's judgements summed over their count (``backtest.slice_ratios``)."""
    assert slo.timeslices is not None
    slice_ = slo.timeslices.window
    if abs(slice_ / timeline.resolution - round(slice_ / timeline.resolution)) > 1e-9:
        raise InputError(
            f"SLO {slo.name!r}: its {format_duration(slice_)} slices are not whole steps of"
            f" {format_duration(timeline.resolution)}; use a step that divides them",
            field="--step",
        )
    reach = max(w for bw in burnrate.policy_for(slo) for w in (bw.long_window, bw.short_window))
    evaluations, at = base_grid(times, reach, interval)
    errors, total = _Counts(timeline, evaluations).over(slice_)
    judgements = [slo.timeslices.judge(e, n) for e, n in zip(errors, total, strict=True)]
    return slice_ratios(slo, judgements, interval, at, left_closed=True)


def counted_windows(
    slo: SLO, timeline: Timeline, times: Sequence[float]
) -> dict[float, dict[int, WindowCounts]]:
    """Counts per decision window at ``times`` (the backtest's traffic-aware input)."""
    counts = _Counts(timeline, times)
    keys = [round(t * 1000) for t in times]
    out: dict[float, dict[int, WindowCounts]] = {}
    for w in decision_windows(slo):
        errors, total = counts.over(w)
        out[w] = {
            key: WindowCounts(errors=e, total=n)
            for key, e, n in zip(keys, errors, total, strict=True)
        }
    return out


def replay(slo: SLO, timeline: Timeline, interval: float) -> list[AlertInterval]:
    """Firing intervals of ``slo``'s conditions over its timeline, evaluated every
    ``interval``; only intervals starting in the scored range (from 0) are kept."""
    _check_grid(timeline, interval)
    lead = max((bw.for_ for bw in burnrate.policy_for(slo)), default=0.0) + interval
    times = evaluation_times(timeline, interval, lead)
    if slo.alerting.traffic_aware:
        intervals = counted_intervals(slo, counted_windows(slo, timeline, times), times)
    elif slo.timeslices is not None:
        intervals = slo_intervals(slo, timeslice_ratios(slo, timeline, interval, times), times)
    else:
        intervals = slo_intervals(slo, static_ratios(slo, timeline, interval, times), times)
    return [i for i in intervals if i.start >= 0]


# ---------------------------------------------------------------- scoring


def merge(intervals: Sequence[AlertInterval], severity: str) -> list[Alert]:
    """Overlapping intervals of ``severity`` (``any``: every one) as single alerts."""
    chosen = sorted(
        (i for i in intervals if severity == "any" or i.severity == severity),
        key=lambda i: i.start,
    )
    alerts: list[Alert] = []
    for i in chosen:
        last = alerts[-1] if alerts else None
        if last is not None and (last.end is None or i.start <= last.end):
            end = None if last.end is None or i.end is None else max(last.end, i.end)
            alerts[-1] = Alert(last.severity, last.start, end, last.long_window)
        else:
            alerts.append(Alert(severity, i.start, i.end, i.long_window))
    return alerts


def match(alerts: Sequence[Alert], incidents: Sequence[Incident]) -> list[int | None]:
    """Per alert, the index of the latest incident it matches (None: a false alarm)."""
    out: list[int | None] = []
    for a in alerts:
        found = [
            k for k, inc in enumerate(incidents) if inc.start <= a.start <= inc.end + a.long_window
        ]
        out.append(max(found, key=lambda k: incidents[k].start) if found else None)
    return out


def score(policy: str, timeline: Timeline, alerts: Sequence[Alert], severity: str) -> Score:
    """The four measures (plus budget before detection) of one policy, SLO and severity."""
    incidents = timeline.incidents
    matched = match(alerts, incidents)
    true_alerts = sum(1 for k in matched if k is not None and incidents[k].should_alert)
    outcomes = []
    for k, inc in enumerate(incidents):
        if not inc.should_alert:
            continue
        mine = [a for a, m in zip(alerts, matched, strict=True) if m == k]
        if not mine:
            spent = errors_between(timeline, inc.start, inc.end) / timeline.budget_events
            outcomes.append(Outcome(k, None, None, spent))
            continue
        first, last = mine[0], mine[-1]
        reset = None if last.end is None else last.end - inc.end
        spent = errors_between(timeline, inc.start, first.start) / timeline.budget_events
        outcomes.append(Outcome(k, first.start - inc.start, reset, spent))
    return Score(policy, timeline.slo, severity, len(alerts), true_alerts, tuple(outcomes))


def evaluation_interval(policy: Policy, resolution: float) -> float:
    """How often ``policy`` is evaluated on a timeline: its interval, or the timeline's
    step when coarser (a real range fetched at a longer step is evaluated every step, as
    the backtest does at a step above the rules' interval)."""
    return max(policy.interval, resolution)


def resolution_of(policies: Sequence[Policy]) -> float:
    """The timeline's step: the largest whole second dividing every policy's interval,
    so all policies replay the very same requests."""
    return float(math.gcd(*(round(p.interval) for p in policies)))


def warmup_of(slo: SLO, applied: Sequence[SLO]) -> float:
    """History before 0 so the SLO period and every long window are full at 0."""
    longest = max((bw.long_window for s in applied for bw in burnrate.policy_for(s)), default=0.0)
    return max(slo.window, longest)


def score_policies(
    slos: Sequence[SLO], policies: Sequence[Policy], days: float, seed: int
) -> Scoring:
    """Every policy against every SLO's synthetic incident set."""
    result = Scoring(days=days, seed=seed, policies=list(policies))
    resolution = resolution_of(policies)
    for slo in slos:
        applied = [apply(p, slo) for p in policies]
        timeline = synthetic(slo, days, seed, resolution, warmup_of(slo, applied))
        score_timeline(result, applied, timeline)
    return result


def score_timeline(result: Scoring, applied: Sequence[SLO], timeline: Timeline) -> None:
    """Replay one SLO's timeline under each policy (``applied``: the SLO under each of
    ``result.policies``, in order) and add its alerts and scores to ``result``. The one
    scorer of synthetic and real timelines alike."""
    result.timelines[timeline.slo] = timeline
    for policy, variant in zip(result.policies, applied, strict=True):
        intervals = replay(variant, timeline, evaluation_interval(policy, timeline.resolution))
        merged = {severity: merge(intervals, severity) for severity in SEVERITIES}
        result.alerts[(policy.name, timeline.slo)] = merged
        for severity, alerts in merged.items():
            result.scores.append(score(policy.name, timeline, alerts, severity))


# ---------------------------------------------------------------- summaries


@dataclass(frozen=True)
class Summary:
    """One policy and severity over every SLO: counts pooled, times pooled."""

    policy: str
    severity: str
    alerts: int
    true_alerts: int
    incidents: int
    detected: int
    detection: tuple[float, ...]
    reset: tuple[float, ...]
    budget_before: tuple[float, ...]

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.incidents if self.incidents else None


def summarize(scores: Sequence[Score], policy: str, severity: str) -> Summary:
    """The scores of ``policy`` and ``severity`` pooled (one SLO's, or every SLO's)."""
    chosen = [s for s in scores if s.policy == policy and s.severity == severity]
    outcomes = [o for s in chosen for o in s.outcomes]
    detected = [o for o in outcomes if o.detection is not None]
    return Summary(
        policy=policy,
        severity=severity,
        alerts=sum(s.alerts for s in chosen),
        true_alerts=sum(s.true_alerts for s in chosen),
        incidents=len(outcomes),
        detected=len(detected),
        detection=tuple(o.detection for o in detected if o.detection is not None),
        reset=tuple(o.reset for o in detected if o.reset is not None),
        budget_before=tuple(o.budget_before for o in detected),
    )


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def maximum(values: Sequence[float]) -> float | None:
    return max(values) if values else None


def to_json(result: Scoring) -> dict:
    """Every score and the incident sets, JSON-ready (times in seconds from the start of
    the scored range; a real range also gives its start and end as ISO 8601)."""
    real = result.real
    return {
        "days": result.days,
        "seed": result.seed,
        "range": None
        if real is None
        else {
            "start": iso_time(real.start),
            "end": iso_time(real.end),
            "step_s": real.step,
            "prometheus": real.prometheus,
            "incidents_file": real.incidents_file,
            "steps_without_data": dict(result.gaps),
        },
        "no_data": list(result.no_data),
        "policies": [
            {
                "name": p.name,
                "file": p.file,
                "interval_s": p.interval,
                "burn_rate": p.alerting.burn_rate,
            }
            for p in result.policies
        ],
        "summary": [
            _summary_json(summarize(result.scores, p.name, sev))
            for p in result.policies
            for sev in SEVERITIES
        ],
        "scores": [_score_json(s) for s in result.scores],
        "incidents": {
            name: [
                {
                    "kind": i.kind,
                    "start_s": i.start,
                    "end_s": i.end,
                    "error_ratio": i.error_ratio,
                    "budget_share": i.budget_share,
                    "should_alert": i.should_alert,
                }
                for i in t.incidents
            ]
            for name, t in result.timelines.items()
        },
        "alerts": {
            f"{policy}/{slo}": {
                severity: [{"start_s": a.start, "end_s": a.end} for a in alerts]
                for severity, alerts in merged.items()
            }
            for (policy, slo), merged in result.alerts.items()
        },
    }


def _summary_json(s: Summary) -> dict:
    return {
        "policy": s.policy,
        "severity": s.severity,
        "alerts": s.alerts,
        "true_alerts": s.true_alerts,
        "precision": s.precision,
        "incidents": s.incidents,
        "detected": s.detected,
        "recall": s.recall,
        "detection_median_s": median(s.detection),
        "detection_max_s": maximum(s.detection),
        "reset_median_s": median(s.reset),
        "reset_max_s": maximum(s.reset),
        "budget_before_median": median(s.budget_before),
        "budget_before_max": maximum(s.budget_before),
    }


def _score_json(s: Score) -> dict:
    pooled = summarize([s], s.policy, s.severity)
    return {
        "policy": s.policy,
        "slo": s.slo,
        "severity": s.severity,
        "alerts": s.alerts,
        "true_alerts": s.true_alerts,
        "precision": pooled.precision,
        "recall": pooled.recall,
        "outcomes": [
            {
                "incident": o.incident,
                "detection_s": o.detection,
                "reset_s": o.reset,
                "budget_before": o.budget_before,
            }
            for o in s.outcomes
        ],
    }


def by_key(scores: Sequence[Score]) -> Mapping[tuple[str, str, str], Score]:
    return {(s.policy, s.slo, s.severity): s for s in scores}
