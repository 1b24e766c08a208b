"""SLO and game-day reports: one ``ReportModel`` rendered as HTML or Markdown.

``render_html`` produces ONE self-contained file that works offline: inline CSS,
charts as inline SVG (``charts``), no scripts, fonts, images or URLs.
``render_markdown`` produces GitHub-flavoured tables for CI summaries and pull-
request comments. Both go through Jinja templates (package data under
``templates/``, overridable with a directory searched first) fed by one
pure ``context(model)``, so the two formats always show the same numbers.

No token, secret or key material belongs in a report: the model holds only
numbers and names, and free text that a caller passes in (titles, fault labels,
experiment notes) is scrubbed of anything shaped like a JWT.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jinja2

from tokenslo import templating
from tokenslo.core.durations import format_duration, parse_duration
from tokenslo.core.timescale import nominal, nominal_duration
from tokenslo.engine.evaluator import SLOStatus, iso_time
from tokenslo.errors import InputError
from tokenslo.files import write_atomically
from tokenslo.jws import token_fingerprint
from tokenslo.markdown import md_text
from tokenslo.reports.charts import chart_id, slo_chart
from tokenslo.reports.model import (
    AlertSpan,
    Experiment,
    FaultInterval,
    ReportModel,
    Series,
    SLOSeries,
    Threshold,
)

__all__ = [
    "AlertSpan",
    "Experiment",
    "FaultInterval",
    "ReportModel",
    "SLOSeries",
    "Series",
    "Threshold",
    "context",
    "render_html",
    "render_markdown",
    "render",
    "write_report",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"
HTML_TEMPLATE = "report.html.j2"
MARKDOWN_TEMPLATE = "report.md.j2"
NONE = "–"
FORMATS = {".html": "html", ".htm": "html", ".md": "markdown", ".markdown": "markdown"}
# JWS/JWT compact serialisation: base64url header starting with '{"' → "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


# ---------------------------------------------------------------- formatting (pure)


def redact(text: str) -> str:
    """Replace anything shaped like a JWT by its SHA-256 name (the secrets convention)."""
    return _JWT.sub(lambda m: f"[token {token_fingerprint(m[0])}]", str(text))


def pct(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return NONE
    return f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return NONE
    return "∞" if math.isinf(value) else f"{value:.{digits}f}"


def seconds(value: float | None) -> str:
    """A span as a duration: whole seconds above a minute, else to 0.1 s."""
    if value is None or not math.isfinite(value):
        return NONE
    if value < 0:
        return "-" + seconds(-value)
    if value < 60:
        return f"{value:.1f}s"
    return format_duration(round(value))


def when(ts: float | None, start: float) -> str:
    """ISO time and its offset from the report's start."""
    if ts is None:
        return "(still active)"
    return f"{iso_time(ts)} (+{seconds(ts - start)})"


def _nominal_burns(status: SLOStatus, scale: float) -> dict[str, float | None]:
    return {nominal_duration(parse_duration(w), scale): v for w, v in status.burn_rates.items()}


# ---------------------------------------------------------------- context (pure)


def reason_of(status: SLOStatus, scale: float) -> str:
    """The evaluator's reason, with windows spelled as in the SLO file under a time scale."""
    if scale == 1 or status.state not in ("page", "ticket"):
        return status.reason
    firing = [a for a in status.alerts if a.severity == status.state and a.firing]
    parts = [
        f"burn {a.long_burn:.3g} over {nominal_duration(a.long_window, scale)} and "
        f"{a.short_burn:.3g} over {nominal_duration(a.short_window, scale)} "
        f"exceed {a.factor:.3g}"
        for a in firing
    ]
    return f"{status.state}: " + "; ".join(parts) if parts else status.reason


def status_row(status: SLOStatus, scale: float) -> dict[str, Any]:
    ttx = status.time_to_exhaustion
    return {
        "name": status.name,
        "service": status.service,
        "objective": f"{status.objective:g}%",
        "window": nominal_duration(status.window, scale),
        "sli": pct(status.sli),
        "error_ratio": pct(status.error_ratio, 4),
        "budget": pct(round(1 - status.objective / 100, 12), 2),
        "budget_remaining": pct(status.error_budget_remaining, 1),
        "burn_rates": {w: num(v) for w, v in _nominal_burns(status, scale).items()},
        "time_to_exhaustion": "never"
        if ttx is None and status.sli is not None
        else seconds(None if ttx is None else nominal(ttx, scale)),
        "state": status.state,
        "reason": redact(reason_of(status, scale)),
    }


def alert_row(alert: AlertSpan, start: float) -> dict[str, str]:
    return {
        "slo": alert.slo,
        "severity": alert.severity,
        "windows": alert.windows,
        "source": "Prometheus ALERTS" if alert.source == "prometheus" else "backtest",
        "start": when(alert.start, start),
        "end": when(alert.end, start),
        "duration": seconds(None if alert.end is None else alert.end - alert.start),
    }


def fault_row(fault: FaultInterval, start: float) -> dict[str, str]:
    return {
        "label": redact(fault.label),
        "slos": ", ".join(fault.slos) or "all",
        "start": when(fault.start, start),
        "end": when(fault.end, start),
        "duration": seconds(None if fault.end is None else fault.end - fault.start),
    }


def experiment_row(exp: Experiment) -> dict[str, str]:
    return {
        "name": redact(exp.name),
        "status": exp.status,
        "expected": ", ".join(redact(a) for a in exp.expected_alerts) or NONE,
        "fired": ", ".join(redact(a) for a in exp.fired_alerts) or NONE,
        "detection": seconds(exp.detection_time),
        "theory": seconds(exp.detection_theory),
        "budget_consumed": pct(exp.budget_consumed, 2),
        "recovery": seconds(exp.recovery_time),
        "notes": redact(exp.notes),
    }


def context(model: ReportModel, chart: Callable[..., str] | None = None) -> dict[str, Any]:
    """Everything the templates show, formatted. ``chart`` draws the SVGs (HTML only)."""
    windows = sorted(
        {w for s in model.statuses for w in _nominal_burns(s, model.time_scale)},
        key=parse_duration,
    )
    order = [s.name for s in model.statuses] or list(model.series)
    sections = []
    for index, name in enumerate(order):
        series = model.series.get(name)
        sections.append(
            {
                "name": name,
                "anchor": chart_id(index, name),
                "points": 0 if series is None else series.sli.present,
                "svg": chart(index, name) if chart and series else "",
            }
        )
    return {
        "title": redact(model.title),
        "start": iso_time(model.start),
        "end": iso_time(model.end),
        "duration": seconds(model.end - model.start),
        "step": seconds(model.step),
        "generated_at": iso_time(model.generated_at),
        "source": model.source,
        "time_scale": f"{model.time_scale:g}",
        "interrupted": model.interrupted,
        "notes": [redact(n) for n in model.notes],
        "windows": windows,
        "statuses": [status_row(s, model.time_scale) for s in model.statuses],
        "states": _state_counts(model.statuses),
        "alerts": [
            alert_row(a, model.start)
            for a in sorted(model.alerts, key=lambda a: (a.start, a.slo, a.source))
        ],
        "faults": [fault_row(f, model.start) for f in sorted(model.faults, key=lambda f: f.start)],
        "experiments": [experiment_row(e) for e in model.experiments],
        "sections": sections,
    }


def _state_counts(statuses: Sequence[SLOStatus]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status.state] = counts.get(status.state, 0) + 1
    order = ("page", "ticket", "no_data", "no_traffic", "ok")
    return [(state, counts[state]) for state in order if state in counts]


# ---------------------------------------------------------------- rendering


def _chart_of(model: ReportModel) -> Callable[[int, str], str]:
    def draw(index: int, name: str) -> str:
        series: SLOSeries = model.series[name]
        return slo_chart(
            series,
            model.alerts_of(name),
            model.faults_of(name),
            model.start,
            model.end,
            chart_id(index, name),
        )

    return draw


def _render(name: str, ctx: dict[str, Any], templates: Path | str | None, html: bool) -> str:
    env = templating.environment(TEMPLATES, templates, autoescape=html, filters={"cell": md_text})
    try:
        return env.get_template(name).render(**ctx)
    except jinja2.TemplateError as exc:
        raise templating.template_error(exc, name) from None


def render_html(model: ReportModel, templates: Path | str | None = None) -> str:
    """One self-contained HTML document (inline CSS and SVG; no scripts, no URLs)."""
    return _render(HTML_TEMPLATE, context(model, _chart_of(model)), templates, html=True)


def render_markdown(model: ReportModel, templates: Path | str | None = None) -> str:
    """GitHub-flavoured Markdown: tables only, for CI summaries and PR comments."""
    return _render(MARKDOWN_TEMPLATE, context(model), templates, html=False)


def format_of(path: Path | str) -> str:
    """``html`` or ``markdown`` from the file name's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"cannot tell the report format from {str(path)!r}: use .html or .md", field="-o"
        )
    return FORMATS[suffix]


def render(model: ReportModel, fmt: str, templates: Path | str | None = None) -> str:
    return (render_html if fmt == "html" else render_markdown)(model, templates)


def write_report(model: ReportModel, path: Path | str, templates: Path | str | None = None) -> Path:
    """Render by the suffix of ``path`` and write atomically (readers never see half a file)."""
    path = Path(path)
    text = render(model, format_of(path), templates)
    if path.parent and not path.parent.exists():
        raise InputError(f"directory {str(path.parent)!r} does not exist", field="-o")
    write_atomically(path, text)
    return path
