"""A Chaos Toolkit journal → the verdict and exit code of ``tokenslo chaos run``. Pure.

Chaos Toolkit decides ``status`` and ``deviated`` from the steady-state
hypothesis only: a method activity that fails leaves the run "completed". Our
check probes fail on purpose when an SRE expectation is not met (an alert did
not fire within theory + slack, an existing token stopped validating), so a
failed method or rollback activity makes the verdict "failed" too. A hypothesis
not met *before* the method means the system was not in its steady state, so
nothing was tested: also "failed".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tokenslo.errors import EXIT_FAILED, EXIT_OK

# Keys of probe outputs worth showing in the summary (measured timings and ratios).
MEASURED = (
    "detection_seconds",
    "theory_seconds",
    "slack_seconds",
    "within",
    "resolution_seconds",
    "delivery_seconds",
    "propagation_seconds",
    "at_least_seconds",
    "objective_seconds",
    "page_ratio",
)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # held | deviated | failed | interrupted | aborted
    status: str
    deviated: bool
    reasons: list[str] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.outcome == "held" else EXIT_FAILED


def _name(run: dict) -> str:
    return str(run.get("activity", {}).get("name", "?"))


def _failure(phase: str, run: dict) -> str:
    exception = run.get("exception") or []
    last = exception[-1].strip() if exception else "failed"
    return f"{phase} activity {_name(run)!r} failed: {last}"


def _hypothesis_not_met(phase: str, state: dict | None) -> list[str]:
    if not state or state.get("steady_state_met") is not False:
        return []
    for probe in state.get("probes", []):
        if probe.get("status") == "failed":
            return [_failure(f"hypothesis ({phase})", probe)]
        if probe.get("tolerance_met") is False:
            return [
                f"hypothesis ({phase}): {_name(probe)!r} out of tolerance: {probe.get('output')}"
            ]
    return [f"hypothesis ({phase}) not met"]


def measurements(journal: dict) -> list[dict[str, Any]]:
    """Outputs of method probes that carry timings or ratios, in run order."""
    found = []
    for run in journal.get("run", []) or []:
        output = run.get("output")
        if isinstance(output, dict) and any(k in output for k in MEASURED):
            found.append(
                {"activity": _name(run), **{k: output[k] for k in MEASURED if k in output}}
            )
    return found


def verdict(journal: dict) -> Verdict:
    status = str(journal.get("status", "unknown"))
    deviated = bool(journal.get("deviated", False))
    steady = journal.get("steady_states") or {}
    reasons = _hypothesis_not_met("before", steady.get("before"))
    reasons += _hypothesis_not_met("after", steady.get("after"))
    reasons += [
        _failure("method", r) for r in journal.get("run", []) or [] if r.get("status") == "failed"
    ]
    reasons += [
        _failure("rollback", r)
        for r in journal.get("rollbacks", []) or []
        if r.get("status") == "failed"
    ]
    if journal.get("_note"):
        reasons.append(str(journal["_note"]))
    if status in ("interrupted", "aborted"):
        outcome = status
    elif deviated:
        outcome = "deviated"
    elif status != "completed" or reasons:
        outcome = "failed"
    else:
        outcome = "held"
    return Verdict(outcome, status, deviated, reasons, measurements(journal))


def summary_lines(v: Verdict, title: str = "") -> list[str]:
    head = f"{title}: " if title else ""
    lines = [f"{head}{v.outcome} (journal status {v.status}, deviated {str(v.deviated).lower()})"]
    lines += [f"  - {reason}" for reason in v.reasons]
    for m in v.measurements:
        values = ", ".join(f"{k}={m[k]}" for k in MEASURED if k in m)
        lines.append(f"  * {m['activity']}: {values}")
    return lines
