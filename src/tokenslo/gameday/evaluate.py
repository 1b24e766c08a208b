"""Per-experiment expectations against what happened. Pure.

An experiment's expectation is met when all of these hold:

* the chaos verdict is the expected one (``held``, or ``deviated`` for an
  experiment that demonstrates a failure, such as clock skew beyond the leeway);
* every expected alert fired (Prometheus ``ALERTS``) within the engine's theory
  plus slack (the journal's ``wait_for_alert`` measurement, else the timeline
  measured against the same theory);
* every expected alert was delivered to the receiver, when the target has one;
* the SLOs stopped paging after the rollback within the recovery timeout.

Unexpected alerts are reported, not failed: a game day finds them, it does not
assume they cannot happen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tokenslo.engine.evaluator import iso_time
from tokenslo.gameday import timeline as tl
from tokenslo.reports.model import Experiment

EXIT_INTERRUPTED = 130
# Verdict reasons (tokenslo.chaos.journal) that mean an activity itself broke.
BROKEN_PREFIXES = ("method activity", "rollback activity", "hypothesis (before)")
TABLE_COLUMNS = (
    "experiment",
    "expected",
    "observed",
    "alerts fired/expected",
    "delivered",
    "detection (theory+slack)",
    "budget used",
    "recovery",
    "verdict",
)


@dataclass(frozen=True)
class Detection:
    """How long after the injection an expected alert fired, against the theory."""

    alert: str  # slo/severity
    fired: bool
    detection_seconds: float | None
    theory_seconds: float | None
    slack_seconds: float | None
    within: bool
    source: str  # journal | timeline


@dataclass(frozen=True)
class ExperimentRun:
    """What the game day observed about one experiment (the input of the evaluation)."""

    name: str
    file: str
    expect: str  # held | deviated
    expected_alerts: tuple[str, ...]
    outcome: str  # the chaos verdict: held | deviated | failed | interrupted | aborted
    started_at: float
    ended_at: float | None = None
    reasons: tuple[str, ...] = ()
    detections: tuple[Detection, ...] = ()  # from the journal
    injected_at: float | None = None
    cleared_at: float | None = None
    recovered_at: float | None = None  # SLOs no longer paging (None: not within the timeout)
    budget_before: Mapping[str, float | None] = field(default_factory=dict)
    budget_after: Mapping[str, float | None] = field(default_factory=dict)
    # Share of the period's budget burnt from the experiment's start to recovery:
    # burn rate over that span × span / period. (before − after is no measure in a
    # young lab, whose period holds only minutes of traffic.)
    budget_consumed: Mapping[str, float | None] = field(default_factory=dict)
    theory: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # alert → (s, slack)
    delivery_known: bool = True  # the target has a webhook receiver
    journal: str = ""
    error: str = ""  # the experiment could not run (the message)


@dataclass(frozen=True)
class ExperimentResult:
    name: str
    file: str
    expected_outcome: str
    outcome: str
    status: str  # passed | failed | interrupted | error (reports.model.Experiment)
    met: bool
    misses: tuple[str, ...]
    expected_alerts: tuple[str, ...]
    fired_alerts: tuple[str, ...]
    unexpected_alerts: tuple[str, ...]
    delivered_alerts: tuple[str, ...] | None  # None: no receiver to tell
    detections: tuple[Detection, ...]
    budget: dict[str, dict[str, float | None]]
    budget_consumed: float | None  # largest share of a period's budget used (0.02 = 2 %)
    recovery_seconds: float | None
    injected_at: float | None
    cleared_at: float | None
    reasons: tuple[str, ...] = ()
    journal: str = ""


# ---------------------------------------------------------------- journal


def detections_from_journal(journal: Mapping[str, Any]) -> list[Detection]:
    """The measured outputs of the journal's ``wait_for_alert`` probes (a probe that
    raised has no output; the timeline then measures that alert)."""
    found = []
    for run in journal.get("run") or []:
        provider = (run.get("activity") or {}).get("provider") or {}
        output = run.get("output")
        if provider.get("func") != "wait_for_alert" or not isinstance(output, dict):
            continue
        if not output.get("slo"):
            continue
        found.append(
            Detection(
                alert=f"{output['slo']}/{output.get('severity', 'page')}",
                fired=bool(output.get("fired")),
                detection_seconds=output.get("detection_seconds"),
                theory_seconds=output.get("theory_seconds"),
                slack_seconds=output.get("slack_seconds"),
                within=bool(output.get("within")),
                source="journal",
            )
        )
    return found


# ---------------------------------------------------------------- evaluation


def _timeline_detection(alert: str, firing: Sequence[tl.Event], run: ExperimentRun) -> Detection:
    theory, slack = run.theory.get(alert, (None, None))
    after = [
        e.at
        for e in firing
        if e.alert == alert
        and run.injected_at is not None
        and e.at >= run.injected_at - (slack or 0)
    ]
    seconds = (
        None if not after or run.injected_at is None else round(min(after) - run.injected_at, 3)
    )
    within = seconds is not None and theory is not None and seconds <= theory + (slack or 0)
    return Detection(alert, seconds is not None, seconds, theory, slack, within, "timeline")


def detections_for(run: ExperimentRun, events: Sequence[tl.Event]) -> list[Detection]:
    """One detection per expected alert: the journal's when it measured one, else the timeline's."""
    firing = tl.of_experiment(events, run.name, tl.ALERT_FIRING)
    journal = {d.alert: d for d in run.detections if d.fired}
    return [journal.get(a) or _timeline_detection(a, firing, run) for a in run.expected_alerts]


def _budget(run: ExperimentRun) -> dict[str, dict[str, float | None]]:
    out = {}
    names = set(run.budget_before) | set(run.budget_after) | set(run.budget_consumed)
    for slo in sorted(names):
        consumed = run.budget_consumed.get(slo)
        out[slo] = {
            "before": run.budget_before.get(slo),
            "after": run.budget_after.get(slo),
            "consumed": None if consumed is None else round(consumed, 6),
        }
    return out


def _largest_consumed(budget: Mapping[str, Mapping[str, float | None]], slos: set[str]):
    values = [
        b["consumed"]
        for slo, b in budget.items()
        if b["consumed"] is not None and (not slos or slo in slos)
    ]
    return max(values) if values else None


def _misses(
    run: ExperimentRun,
    fired: set[str],
    delivered: set[str] | None,
    detections: Sequence[Detection],
    recovery: float | None,
) -> list[str]:
    misses = []
    if run.outcome != run.expect:
        why = f": {run.reasons[0]}" if run.reasons else ""
        misses.append(f"expected the hypothesis to {_verb(run.expect)}, it {run.outcome}{why}")
    elif run.outcome == "deviated":
        # Chaos Toolkit calls a run "deviated" whatever else failed; a broken activity
        # (load that never started, a rollback that failed) still spoils the demonstration.
        broken = [r for r in run.reasons if r.startswith(BROKEN_PREFIXES)]
        if broken:
            misses.append(f"deviated as expected, but {broken[0]}")
    for alert in run.expected_alerts:
        if alert not in fired:
            misses.append(f"{alert} did not fire")
        elif delivered is not None and alert not in delivered:
            misses.append(f"{alert} fired but was not delivered to the receiver")
    for d in detections:
        if d.fired and not d.within:
            bound = (
                "no theory"
                if d.theory_seconds is None
                else (f"theory {d.theory_seconds:g}s + slack {d.slack_seconds or 0:g}s")
            )
            misses.append(f"{d.alert} detected after {d.detection_seconds}s, beyond {bound}")
    if recovery is None and run.ended_at is not None:
        misses.append("SLOs still paging at the end of the recovery timeout")
    return misses


def _verb(outcome: str) -> str:
    return "hold" if outcome == "held" else "deviate"


def _after_injection(run: ExperimentRun, event: tl.Event) -> bool:
    """An alert that started firing before the fault (minus slack) was not caused by it."""
    if run.injected_at is None:
        return True
    slack = max((s for _t, s in run.theory.values()), default=0.0)
    return event.at >= run.injected_at - slack


def evaluate_experiment(run: ExperimentRun, events: Sequence[tl.Event]) -> ExperimentResult:
    mine = tl.of_experiment(events, run.name)
    fired = {e.alert for e in mine if e.kind == tl.ALERT_FIRING and _after_injection(run, e)}
    delivered = (
        {e.alert for e in mine if e.kind == tl.ALERT_DELIVERED} if run.delivery_known else None
    )
    detections = detections_for(run, events)
    since = run.cleared_at if run.cleared_at is not None else run.ended_at
    recovery = None
    if run.recovered_at is not None and since is not None:
        recovery = round(max(0.0, run.recovered_at - since), 3)
    budget = _budget(run)
    if run.error:
        misses, status = [f"could not run: {run.error}"], "error"
    elif run.outcome == "interrupted":
        misses, status = ["interrupted"], "interrupted"
    else:
        misses = _misses(run, fired, delivered, detections, recovery)
        status = "failed" if misses else "passed"
    return ExperimentResult(
        name=run.name,
        file=run.file,
        expected_outcome=run.expect,
        outcome="error" if run.error else run.outcome,
        status=status,
        met=not misses,
        misses=tuple(misses),
        expected_alerts=run.expected_alerts,
        fired_alerts=tuple(sorted(fired)),
        unexpected_alerts=tuple(sorted(fired - set(run.expected_alerts))),
        delivered_alerts=None if delivered is None else tuple(sorted(delivered)),
        detections=tuple(detections),
        budget=budget,
        budget_consumed=_largest_consumed(budget, {a.split("/")[0] for a in run.expected_alerts}),
        recovery_seconds=recovery,
        injected_at=run.injected_at,
        cleared_at=run.cleared_at,
        reasons=run.reasons,
        journal=run.journal,
    )


def exit_code(results: Iterable[ExperimentResult], interrupted: bool) -> int:
    """130 interrupted (like a shell), 1 an expectation missed, else 0."""
    if interrupted:
        return EXIT_INTERRUPTED
    return 0 if all(r.met for r in results) else 1


# ---------------------------------------------------------------- output


def to_report_experiment(result: ExperimentResult) -> Experiment:
    """The report model's row: the first expected alert's detection stands for the run."""
    first = next((d for d in result.detections if d.fired), None)
    notes = "; ".join(result.misses) or (
        f"expected {result.expected_outcome}, observed {result.outcome}"
    )
    if result.unexpected_alerts:
        notes += f"; also fired: {', '.join(result.unexpected_alerts)}"
    return Experiment(
        name=result.name,
        status=result.status,
        expected_alerts=result.expected_alerts,
        fired_alerts=result.fired_alerts,
        detection_time=None if first is None else first.detection_seconds,
        detection_theory=None if first is None else first.theory_seconds,
        budget_consumed=result.budget_consumed,
        recovery_time=result.recovery_seconds,
        notes=notes,
    )


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}s"


def table_rows(results: Sequence[ExperimentResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        detections = ", ".join(
            f"{_seconds(d.detection_seconds)} ({_seconds(d.theory_seconds)}+"
            f"{_seconds(d.slack_seconds)})"
            for d in r.detections
        )
        expected = set(r.expected_alerts)
        fired = len(expected & set(r.fired_alerts))
        delivered = (
            "–"
            if r.delivered_alerts is None
            else f"{len(expected & set(r.delivered_alerts))}/{len(expected)}"
        )
        budget = "–" if r.budget_consumed is None else f"{r.budget_consumed * 100:.2f}%"
        rows.append(
            (
                r.name,
                r.expected_outcome,
                r.outcome,
                f"{fired}/{len(expected)}",
                delivered,
                detections or "–",
                budget,
                _seconds(r.recovery_seconds),
                "MET" if r.met else r.status.upper(),
            )
        )
    return rows


def format_table(results: Sequence[ExperimentResult]) -> str:
    rows = [TABLE_COLUMNS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def result_to_json(result: ExperimentResult) -> dict[str, Any]:
    data = asdict(result)
    for key in ("injected_at", "cleared_at"):
        data[key] = None if data[key] is None else iso_time(data[key])
    return data
