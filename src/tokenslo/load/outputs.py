"""Gate results as a terminal table, JUnit XML, JSON and Markdown (all pure: text in, text out).

JUnit has one ``<testcase>`` per SLO check (classname ``tokenslo.gate.<service>``,
name ``<slo> client|server``) so CI systems list each SLO; a breach is a
``<failure>``, insufficient or missing data an ``<error>`` (never ``<skipped>``:
an unjudged SLO must not look green). Markdown is meant for ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tokenslo.core.durations import format_duration
from tokenslo.engine.evaluator import iso_time
from tokenslo.load.gate import RULE, Check, NotGated, Verdict
from tokenslo.load.recorder import Recorder
from tokenslo.markdown import md_text

MARK = {"pass": "PASS", "fail": "FAIL", "insufficient_data": "INSUFFICIENT", "no_data": "NO DATA"}


@dataclass(frozen=True)
class RunInfo:
    scenario: str
    users: int
    spawn_rate: float
    duration: float  # requested, seconds
    target: str
    started: float | None  # first request (unix)
    ended: float | None  # last request (unix)
    shape: str | None = None
    processes: int | None = None
    workers: dict[str, int] = field(default_factory=dict)  # worker → requests it reported
    pacing: str | None = None  # TOKENSLO_PACING value (throughput:X per user, between:A:B)
    stopped: str | None = None  # why the run stopped before its duration (earlystop)
    not_gated: tuple[NotGated, ...] = ()  # SLOs whose requests the run did not send

    @property
    def window(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started


def _measured(check: Check) -> str:
    if check.measured is None:
        return "-"
    if check.side == "server":
        return f"burn {check.measured:.3g}"
    return f"{check.measured * 100:.3f}%"


def _requests(check: Check) -> str:
    if check.side == "server":
        return "-"
    return f"{check.count}/{check.min_requests}"


def _not_gated_lines(run: RunInfo | None, bullet: str = "  ") -> list[str]:
    if run is None or not run.not_gated:
        return []
    return ["not gated:", *[f"{bullet}{n.slo}: {n.reason}" for n in run.not_gated]]


def table(checks: Sequence[Check], verdict: Verdict, run: RunInfo | None = None) -> str:
    """Fixed-width table for the terminal, then why the run stopped early (if it did),
    every unpassed check's reasons, the SLOs not gated, the verdict and the sample rule."""
    header = ("SLO", "SIDE", "CHECK", "N/MIN", "MEASURED", "OBJECTIVE", "RESULT")
    rows = [
        (
            c.slo,
            c.side,
            c.kind,
            _requests(c),
            _measured(c),
            f"{c.objective:g}%",
            MARK[c.state],
        )
        for c in checks
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    details = [f"  {c.name}: {c.detail}" for c in checks if c.state != "pass"]
    stopped = ["", run.stopped] if run is not None and run.stopped else []
    not_gated = _not_gated_lines(run)
    return (
        "\n".join(
            [
                *lines,
                *stopped,
                *(["", *details] if details else []),
                *(["", *not_gated] if not_gated else []),
                "",
                f"gate {verdict.result}: {verdict.reason}",
                f"rule: {RULE}",
            ]
        )
        + "\n"
    )


def junit(checks: Sequence[Check], verdict: Verdict, run: RunInfo) -> str:
    suite = ET.Element(
        "testsuite",
        name="tokenslo.gate",
        tests=str(len(checks)),
        failures=str(sum(c.state == "fail" for c in checks)),
        errors=str(sum(c.state in ("insufficient_data", "no_data") for c in checks)),
        skipped="0",
        timestamp=iso_time(run.started) if run.started else "",
        time=f"{run.window or 0:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("scenario", run.scenario),
        ("users", run.users),
        ("target", run.target),
        ("verdict", verdict.result),
        ("rule", RULE),
        *([("stopped", run.stopped)] if run.stopped else []),
        *[(f"not_gated.{n.slo}", n.reason) for n in run.not_gated],
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=f"tokenslo.gate.{check.service}", name=check.name, time="0"
        )
        if check.state == "fail":
            ET.SubElement(case, "failure", message=check.detail, type="breach").text = _why(
                check, run
            )
        elif check.state != "pass":
            ET.SubElement(case, "error", message=check.detail, type=check.state).text = _why(
                check, run
            )
        ET.SubElement(
            case, "system-out"
        ).text = f"{check.kind} of {', '.join(check.requests)}: {check.message}"
    root = ET.Element("testsuites", name="tokenslo loadtest", tests=str(len(checks)))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _why(check: Check, run: RunInfo) -> str:
    return check.detail + (f"\n{run.stopped}" if run.stopped else "")


def to_json(checks: Sequence[Check], verdict: Verdict, run: RunInfo, recorder: Recorder) -> str:
    data: dict[str, Any] = {
        "verdict": asdict(verdict),
        "rule": RULE,
        "run": {
            **asdict(run),
            "started": iso_time(run.started) if run.started else None,
            "ended": iso_time(run.ended) if run.ended else None,
            "window_seconds": run.window,
            "total_requests": recorder.total,
        },
        "checks": [
            {**asdict(c), "name": c.name, "detail": c.detail, "requests": list(c.requests)}
            for c in checks
        ],
        "requests": {
            name: {
                "requests": s.requests,
                "failures": s.failures,
                "errors": dict(s.errors.most_common(5)),
            }
            for name, s in sorted(recorder.names.items())
        },
    }
    return json.dumps(data, indent=2) + "\n"


def markdown(checks: Sequence[Check], verdict: Verdict, run: RunInfo, recorder: Recorder) -> str:
    icon = {"passed": "✅", "failed": "❌"}.get(verdict.result, "⚠️")
    window = "-" if run.window is None else format_duration(round(run.window))
    window = "under 1s" if run.window is not None and run.window < 0.5 else window
    lines = [
        f"## {icon} Load-test gate {verdict.result}: `{run.scenario}`",
        "",
        f"{md_text(verdict.reason)}",
        "",
        f"{run.users} users, {recorder.total} requests over {window} against `{run.target}`.",
        "",
        *([f"**{md_text(run.stopped)}**", ""] if run.stopped else []),
        "| SLO | side | check | requests / needed | measured | objective | result |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for c in checks:
        lines.append(
            f"| `{c.slo}` | {c.side} | {c.kind} | {_requests(c)} | {_measured(c)} | "
            f"{c.objective:g}% | {MARK[c.state]} |"
        )
    failing = [c for c in checks if c.state != "pass"]
    if failing:
        lines += ["", *[f"- **{c.name}**: {md_text(c.detail)}" for c in failing]]
    if run.not_gated:
        lines += ["", "Not gated:", ""]
        lines += [f"- `{n.slo}`: {md_text(n.reason)}" for n in run.not_gated]
    lines += ["", "| request | count | failed |", "|---|---:|---:|"]
    lines += [f"| `{n}` | {s.requests} | {s.failures} |" for n, s in sorted(recorder.names.items())]
    lines += ["", f"_Minimum-sample rule: {RULE}._", ""]
    return "\n".join(lines)
