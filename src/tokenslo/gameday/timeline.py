"""The game day's timeline, assembled from what was fetched. Pure.

Sources, each turned into ``Event``s here:

* the chaos runs' records (``<state dir>/chaos-runs/<run id>.json``): faults,
  clock offsets and unpublished keys, with the time each was set and cleared;
* Prometheus's ``ALERTS`` series of the generated burn-rate rules (one range
  query over the whole game day): pending, firing and resolved;
* the webhook receiver's notifications: the moment Alertmanager *delivered* an
  alert (or its resolution) to a receiver;
* the game day's own phases (experiment started/ended, SLOs recovered).

Every event is then attributed to the experiment whose slot (its start until the
next experiment's start) contains it, so a late resolution still counts for the
experiment that caused it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

from tokenslo.engine.evaluator import iso_time
from tokenslo.reports.data import spans_from_alerts_matrix
from tokenslo.reports.model import FaultInterval
from tokenslo.rules import conventions as conv

FAULT_INJECTED = "fault_injected"
FAULT_CLEARED = "fault_cleared"
KEY_ROTATED = "key_rotated"
ALERT_PENDING = "alert_pending"
ALERT_FIRING = "alert_firing"
ALERT_RESOLVED = "alert_resolved"
ALERT_DELIVERED = "alert_delivered"
RESOLUTION_DELIVERED = "resolution_delivered"
EXPERIMENT_STARTED = "experiment_started"
EXPERIMENT_ENDED = "experiment_ended"
SLOS_RECOVERED = "slos_recovered"
PHASE = "phase"


@dataclass(frozen=True)
class Event:
    at: float  # unix seconds
    kind: str
    experiment: str = ""  # "" before the first experiment
    slo: str = ""
    severity: str = ""
    detail: str = ""

    @property
    def alert(self) -> str:
        """``slo/severity``, the key expectations use."""
        return f"{self.slo}/{self.severity}" if self.slo else ""


@dataclass(frozen=True)
class Slot:
    """An experiment's share of the game day: from its start until the next one starts."""

    experiment: str
    start: float
    end: float


# ---------------------------------------------------------------- faults


def _describe(change: dict) -> str:
    detail = change.get("detail") or {}
    target = change.get("target", "?")
    kind = change.get("kind")
    if kind == "clock":
        return f"{target} clock {detail.get('offset_seconds', 0):+g}s"
    if kind == "key":
        return f"{target} signing key {change.get('ref', '?')} not published"
    if kind == "rotation":
        return f"{target} signing key rotated (published)"
    effect = detail.get("effect", "fault")
    where = detail.get("path") or f"{detail.get('path_prefix', '/')}*"
    return f"{target} {where} {effect}".strip()


def fault_events(experiment: str, record: dict) -> list[Event]:
    """Set/cleared events of one chaos run's recorded changes. A change never cleared
    by the run ended at its server-side expiry (``expired``)."""
    events = []
    for change in record.get("changes") or []:
        label = _describe(change)
        set_at = change.get("set_at")
        if set_at is None:
            continue
        if change.get("kind") == "rotation":
            events.append(Event(float(set_at), KEY_ROTATED, experiment, detail=label))
            continue
        events.append(Event(float(set_at), FAULT_INJECTED, experiment, detail=label))
        cleared = change.get("cleared_at")
        if cleared is not None:
            events.append(Event(float(cleared), FAULT_CLEARED, experiment, detail=label))
        elif change.get("expires_at") is not None:
            end = float(change["expires_at"])
            events.append(Event(end, FAULT_CLEARED, experiment, detail=f"{label} (expired)"))
    return events


def fault_intervals(
    events: Iterable[Event], slos_of: dict[str, tuple[str, ...]]
) -> list[FaultInterval]:
    """Shaded intervals for the report: each injection until its clearing (same label),
    limited to the SLOs the experiment expects to page (all SLOs when it expects none)."""
    open_: dict[tuple[str, str], float] = {}
    intervals: list[FaultInterval] = []
    for event in sorted(events, key=lambda e: e.at):
        label = event.detail.removesuffix(" (expired)")
        key = (event.experiment, label)
        if event.kind == FAULT_INJECTED:
            open_[key] = event.at
        elif event.kind == FAULT_CLEARED and key in open_:
            start = open_.pop(key)
            intervals.append(_interval(start, event.at, event.experiment, label, slos_of))
    for (experiment, label), start in open_.items():
        intervals.append(_interval(start, None, experiment, label, slos_of))
    return sorted(intervals, key=lambda i: i.start)


def _interval(start, end, experiment, label, slos_of) -> FaultInterval:
    return FaultInterval(
        start=start, end=end, label=f"{experiment}: {label}", slos=slos_of.get(experiment, ())
    )


# ---------------------------------------------------------------- alerts


def alert_events(
    matrix: Sequence[dict], step: float, end: float, slos: Iterable[str]
) -> list[Event]:
    """Pending, firing and resolved events from a range query of ``ALERTS`` (both states).

    A firing span still open at ``end`` has no resolved event."""
    wanted = tuple(slos)
    events: list[Event] = []
    for state, kind in (("pending", ALERT_PENDING), ("firing", ALERT_FIRING)):
        series = [s for s in matrix if s.get("metric", {}).get("alertstate") == state]
        for span in spans_from_alerts_matrix(series, step, end, wanted):
            events.append(
                Event(span.start, kind, slo=span.slo, severity=span.severity, detail=span.windows)
            )
            if state == "firing" and span.end is not None:
                events.append(
                    Event(
                        span.end,
                        ALERT_RESOLVED,
                        slo=span.slo,
                        severity=span.severity,
                        detail=span.windows,
                    )
                )
    return events


def delivery_events(notifications: Iterable[dict], since: float = 0.0) -> list[Event]:
    """What the receiver got from Alertmanager (burn-rate alerts only), from ``since`` on."""
    events = []
    for record in notifications:
        labels = record.get("labels") or {}
        if labels.get("alertname") != conv.BURN_ALERT:
            continue
        received = record.get("received_at")
        if received is None:
            continue
        try:
            at = float(received)
        except (TypeError, ValueError):
            continue
        if at < since:
            continue
        kind = ALERT_DELIVERED if record.get("status") == "firing" else RESOLUTION_DELIVERED
        windows = (
            f"{labels.get(conv.LONG_WINDOW_LABEL, '?')}/{labels.get(conv.SHORT_WINDOW_LABEL, '?')}"
        )
        events.append(
            Event(
                at,
                kind,
                slo=labels.get(conv.SLO_LABEL, ""),
                severity=labels.get(conv.SEVERITY_LABEL, ""),
                detail=windows,
            )
        )
    return events


# ---------------------------------------------------------------- assembly


def slots(starts: Sequence[tuple[str, float]], end: float) -> list[Slot]:
    """Experiment slots from their start times (in run order) and the game day's end."""
    ordered = sorted(starts, key=lambda s: s[1])
    return [
        Slot(name, start, ordered[i + 1][1] if i + 1 < len(ordered) else end)
        for i, (name, start) in enumerate(ordered)
    ]


def attribute(event: Event, experiment_slots: Sequence[Slot]) -> Event:
    """``event`` with the experiment whose slot holds it (kept when already set)."""
    if event.experiment:
        return event
    for slot in experiment_slots:
        if slot.start <= event.at < slot.end:
            return replace(event, experiment=slot.experiment)
    return event


def build(events: Iterable[Event], experiment_slots: Sequence[Slot]) -> list[Event]:
    """Every event attributed and in time order (ties keep cause before effect)."""
    order = {
        k: i
        for i, k in enumerate(
            (
                EXPERIMENT_STARTED,
                FAULT_INJECTED,
                KEY_ROTATED,
                ALERT_PENDING,
                ALERT_FIRING,
                ALERT_DELIVERED,
                FAULT_CLEARED,
                ALERT_RESOLVED,
                RESOLUTION_DELIVERED,
                SLOS_RECOVERED,
                EXPERIMENT_ENDED,
                PHASE,
            )
        )
    }
    attributed = [attribute(e, experiment_slots) for e in events]
    return sorted(attributed, key=lambda e: (e.at, order.get(e.kind, 99)))


def of_experiment(events: Iterable[Event], name: str, kind: str | None = None) -> list[Event]:
    return [e for e in events if e.experiment == name and (kind is None or e.kind == kind)]


def to_json(events: Iterable[Event]) -> list[dict]:
    return [{"time": iso_time(e.at), **asdict(e)} for e in events]
