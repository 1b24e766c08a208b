"""The alert-policy scoring report: Markdown, JSON and one self-contained HTML file.

One pure ``context(result)`` feeds both templates, so they show the same numbers: a
side-by-side table of policies (per severity: alerts, precision, recall, detection and
reset times, budget burnt before detection), the same per SLO, and every incident with
how each policy met it. The HTML adds one chart per policy: per SLO a row with the
incidents as bands (dark: should alert) and the page and ticket alerts as bars.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from tokenslo import templating
from tokenslo.core.durations import format_duration
from tokenslo.engine import scoring as sc
from tokenslo.engine.evaluator import iso_time
from tokenslo.engine.incidents import DAY, SIGNIFICANT
from tokenslo.errors import InputError
from tokenslo.files import write_atomically
from tokenslo.markdown import md_text
from tokenslo.reports.charts import RC, SEVERITY_COLORS, SVG_METADATA, chart_id, inline_svg
from tokenslo.reports.render import NONE, TEMPLATES, pct, seconds

HTML_TEMPLATE = "policies.html.j2"
MARKDOWN_TEMPLATE = "policies.md.j2"
INCIDENT_COLORS = {True: "#1565c0", False: "#9e9e9e"}
MIN_WIDTH = 0.004  # share of the range: a 30 s blip over 30 days is still visible


# ---------------------------------------------------------------- context (pure)


def summary_row(s: sc.Summary) -> dict[str, str]:
    return {
        "policy": s.policy,
        "severity": s.severity,
        "alerts": str(s.alerts),
        "false_alerts": str(s.alerts - s.true_alerts),
        "precision": pct(s.precision, 1),
        "recall": f"{pct(s.recall, 1)} ({s.detected}/{s.incidents})",
        "detection": f"{seconds(sc.median(s.detection))} / {seconds(sc.maximum(s.detection))}",
        "reset": f"{seconds(sc.median(s.reset))} / {seconds(sc.maximum(s.reset))}",
        "budget": f"{pct(sc.median(s.budget_before), 2)} / {pct(sc.maximum(s.budget_before), 2)}",
    }


def outcome_text(outcome: sc.Outcome | None) -> str:
    """How one policy met one incident: detection time, or missed (budget spent)."""
    if outcome is None:
        return NONE
    if outcome.detection is None:
        return f"missed ({pct(outcome.budget_before, 1)} burnt)"
    return f"after {seconds(outcome.detection)} ({pct(outcome.budget_before, 2)})"


def source_text(result: sc.Scoring) -> str:
    """What was replayed: the synthetic set (seed) or the real range (times, Prometheus,
    incidents file), and where an incident's "should alert" comes from."""
    real = result.real
    if real is None:
        return (
            f"Synthetic incident set: {result.days:g} days per SLO, seed {result.seed}. An "
            f"incident should alert when it burns at least {pct(SIGNIFICANT, 0)} of the "
            "period's error budget."
        )
    return (
        f"Real range: {iso_time(real.start)} to {iso_time(real.end)} ({result.days:.2f} days), "
        f"counts from Prometheus at {real.prometheus} every {format_duration(real.step)}; "
        f"incidents from {real.incidents_file} (should alert as the file says). The budget "
        "is (1 − objective) × the events over the SLO period ending at the range end."
    )


def incident_start(result: sc.Scoring, start: float) -> str:
    """A synthetic incident's day in its range; a real one's time."""
    if result.real is None:
        return f"day {start / DAY:.2f}"
    return iso_time(result.real.start + start)


def incident_rows(result: sc.Scoring) -> list[dict[str, Any]]:
    scores = sc.by_key(result.scores)
    rows = []
    for slo, timeline in result.timelines.items():
        for k, inc in enumerate(timeline.incidents):
            outcomes = []
            for policy in result.policies:
                found = [o for o in scores[(policy.name, slo, "any")].outcomes if o.incident == k]
                outcomes.append(outcome_text(found[0] if found else None))
            rows.append(
                {
                    "slo": slo,
                    "kind": inc.kind,
                    "start": incident_start(result, inc.start),
                    "duration": seconds(inc.end - inc.start),
                    "budget": pct(inc.budget_share, 2),
                    "should_alert": "yes" if inc.should_alert else "no",
                    "outcomes": outcomes,
                }
            )
    return rows


def context(result: sc.Scoring, charts: bool = False) -> dict[str, Any]:
    policies = [p.name for p in result.policies]
    return {
        "title": "Alert-policy scoring: " + " vs ".join(policies),
        "source": source_text(result),
        "command": "tokenslo slo backtest "
        + ("--synthetic" if result.real is None else "--incidents"),
        "no_data": result.no_data,
        "gaps": ", ".join(f"{n} {pct(g, 1)}" for n, g in result.gaps.items() if g > 0),
        "slos": list(result.timelines),
        "policies": [
            {
                "name": p.name,
                "file": p.file,
                "description": p.description,
                "burn_rate": p.alerting.burn_rate,
                "interval": format_duration(p.interval),
                "chart": policy_chart(result, i, p.name) if charts else "",
            }
            for i, p in enumerate(result.policies)
        ],
        "summary": [
            summary_row(sc.summarize(result.scores, p, sev))
            for sev in sc.SEVERITIES
            for p in policies
        ],
        "per_slo": [
            {"slo": s.slo, **summary_row(sc.summarize([s], s.policy, s.severity))}
            for s in sorted(
                result.scores, key=lambda s: (s.slo, s.severity, policies.index(s.policy))
            )
            if s.severity in ("page", "any")
        ],
        "incidents": incident_rows(result),
    }


# ---------------------------------------------------------------- chart


def policy_chart(result: sc.Scoring, index: int, policy: str) -> str:
    """Incidents vs alerts over the range, one row per SLO, as an inline ``<svg>``."""
    slos = list(result.timelines)
    prefix = chart_id(index, policy)
    span = result.days * DAY
    with rc_context(RC):
        fig = Figure(figsize=(9.0, 0.9 + 0.38 * len(slos)))
        FigureCanvasSVG(fig)
        ax = fig.subplots()
        fig.subplots_adjust(left=0.26, right=0.98, top=0.93, bottom=0.5 / (0.9 + 0.38 * len(slos)))
        for row, slo in enumerate(slos):
            y = len(slos) - 1 - row
            for k, inc in enumerate(result.timelines[slo].incidents):
                _bar(
                    ax,
                    inc.start,
                    inc.end,
                    y - 0.45,
                    0.9,
                    span,
                    f"incident-{row}-{k}",
                    color=INCIDENT_COLORS[inc.should_alert],
                    alpha=0.35,
                    label="incident (should alert)"
                    if inc.should_alert
                    else "incident (should not)",
                )
            merged = result.alerts[(policy, slo)]
            for severity, offset in (("page", 0.05), ("ticket", -0.35)):
                for i, alert in enumerate(merged[severity]):
                    end = span if alert.end is None else alert.end
                    _bar(
                        ax,
                        alert.start,
                        end,
                        y + offset,
                        0.3,
                        span,
                        f"alert-{severity}-{row}-{i}",
                        color=SEVERITY_COLORS[severity],
                        alpha=0.9,
                        label=f"{severity} alert",
                    )
        ax.set_xlim(0, result.days)
        ax.set_ylim(-0.6, len(slos) - 0.4)
        ax.set_yticks(range(len(slos)), list(reversed(slos)))
        ax.set_xlabel(
            "day of the synthetic range"
            if result.real is None
            else f"days since {iso_time(result.real.start)}"
        )
        ax.grid(True, axis="x", color="#e0e0e0", linewidth=0.5)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(
            unique.values(),
            unique.keys(),
            loc="lower left",
            bbox_to_anchor=(0.0, 1.02),
            ncols=4,
            frameon=False,
        )
        fig.subplots_adjust(top=1 - 0.55 / (0.9 + 0.38 * len(slos)))
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=SVG_METADATA)
    return inline_svg(buffer.getvalue(), prefix, f"incidents and alerts under {policy}")


def _bar(
    ax: Any, start: float, end: float, y: float, height: float, span: float, gid: str, **style: Any
) -> None:
    width = max(end - start, MIN_WIDTH * span) / DAY
    patch = Rectangle((start / DAY, y), width, height, linewidth=0, **style)
    patch.set_gid(gid)
    ax.add_patch(patch)


# ---------------------------------------------------------------- rendering (I/O at the end)


def _render(name: str, ctx: dict[str, Any], html: bool) -> str:
    env = templating.environment(TEMPLATES, autoescape=html, filters={"cell": md_text})
    try:
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateError as exc:
        raise templating.template_error(exc, name) from None


def render_html(result: sc.Scoring) -> str:
    return _render(HTML_TEMPLATE, context(result, charts=True), html=True)


def render_markdown(result: sc.Scoring) -> str:
    return _render(MARKDOWN_TEMPLATE, context(result), html=False)


REPORT_FILES = ("policies.md", "policies.json", "policies.html")


def write_reports(result: sc.Scoring, directory: str | Path) -> list[Path]:
    """``policies.md``, ``policies.json`` and ``policies.html`` into ``directory``."""
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise InputError(f"{str(out)!r} is not a directory", field="-o")
    out.mkdir(parents=True, exist_ok=True)
    texts: Sequence[str] = (
        render_markdown(result),
        json.dumps(sc.to_json(result), indent=2) + "\n",
        render_html(result),
    )
    paths = [out / name for name in REPORT_FILES]
    for path, text in zip(paths, texts, strict=True):
        write_atomically(path, text)
    return paths
