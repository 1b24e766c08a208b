"""Charts of a report as inline SVG, drawn by matplotlib (no hand-written plotting).

Each SLO gets one figure: SLI over time (top) and burn rate per alert window
(bottom, symlog so 0 and ×1000 both fit), a horizontal line per alert condition,
and the alert firing and fault intervals shaded on both. The SVG is made fit
for inlining in one offline HTML file: glyphs as paths (``svg.fonttype: path``,
no fonts to fetch), no DOCTYPE/metadata/namespace URLs, ids prefixed per chart
so several charts share one document, and a fixed hash salt so the same data
gives the same bytes. Lines and shaded spans carry ids (``<chart>-sli``,
``<chart>-burn-5m``, ``<chart>-sli-fault-0``, ``<chart>-burn-alert-page-1``) so tests and
readers can find them.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # never a GUI backend, whatever the environment says

import matplotlib.dates as mdates  # noqa: E402
from matplotlib import rc_context  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_svg import FigureCanvasSVG  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tokenslo.reports.model import AlertSpan, FaultInterval, SLOSeries, Threshold  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle
    from matplotlib.typing import RcKeyType

RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "path",  # text as paths: nothing to load, renders the same everywhere
    "svg.hashsalt": "tokenslo",  # deterministic ids
    "path.simplify": False,  # keep every sample: a flat line still has all its points
    "font.size": 8,
    "axes.titlesize": 9,
    "legend.fontsize": 6.5,
}
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}
SEVERITY_COLORS = {"page": "#c62828", "ticket": "#ef6c00"}
FAULT_COLOR = "#1565c0"
LINE_STYLES = ("--", "-.", ":", (0, (5, 1, 1, 1)))
_STRIP = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*", re.S),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
    re.compile(r'\s+(width|height)="[\d.]+pt"'),
)
_REF = re.compile(r'(\bid="|\bhref="#|url\(#)([^")]+)')


def chart_id(index: int, slo: str) -> str:
    """A unique, id-safe prefix for the chart of the ``index``-th SLO."""
    return f"c{index}-" + re.sub(r"[^A-Za-z0-9_-]", "-", slo)


def slo_chart(
    series: SLOSeries,
    alerts: Sequence[AlertSpan],
    faults: Sequence[FaultInterval],
    start: float,
    end: float,
    prefix: str,
) -> str:
    """The SLO's chart as an ``<svg>`` element ready to inline."""
    with rc_context(RC):
        fig = Figure(figsize=(9.0, 5.2))
        FigureCanvasSVG(fig)
        ax_sli, ax_burn = fig.subplots(2, 1, sharex=True)
        # Fixed margins (not constrained layout): every chart's plot area lines up,
        # whatever the width of its legend.
        fig.subplots_adjust(left=0.08, right=0.76, top=0.93, bottom=0.1, hspace=0.1)
        _plot_sli(ax_sli, series)
        _plot_burn(ax_burn, series)
        for panel, ax in (("sli", ax_sli), ("burn", ax_burn)):
            _shade(ax, panel, alerts, faults, start, end)
            ax.set_xlim(_dt(start), _dt(end))
            ax.grid(True, color="#e0e0e0", linewidth=0.5)
        _legend(ax_sli)
        _legend(ax_burn)
        locator = mdates.AutoDateLocator(tz=UTC)
        ax_burn.xaxis.set_major_locator(locator)
        ax_burn.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
        ax_burn.set_xlabel("time (UTC)")
        if not series.sli.present and not any(s.present for s in series.burn):
            ax_sli.text(0.5, 0.5, "no data", transform=ax_sli.transAxes, ha="center", va="center")
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=SVG_METADATA)
    return inline_svg(buffer.getvalue(), prefix, f"SLI and burn rate of {series.slo}")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _xy(points: Sequence[tuple[float, float | None]], scale: float = 1.0):
    xs = [_dt(t) for t, _v in points]
    ys = [math.nan if v is None else v * scale for _t, v in points]
    return xs, ys


def _plot_sli(ax: Axes, series: SLOSeries) -> None:
    xs, ys = _xy(series.sli.points, 100.0)
    (line,) = ax.plot(xs, ys, color="#2e7d32", linewidth=1.4, label=series.sli.label)
    line.set_gid("sli")
    ax.axhline(series.objective * 100, color="black", linewidth=0.9, label="objective")
    for i, th in enumerate(series.sli_thresholds):
        _threshold_line(ax, i, th, 100.0).set_gid(f"sli-threshold-{i}")
    values = [y for y in ys if not math.isnan(y)]
    lines = [v * 100 for th in series.sli_thresholds for v in th.values()]
    lows = values + lines + [series.objective * 100]
    low = min(lows)
    ax.set_ylim(max(0.0, low - max(0.5, (100 - low) * 0.1)), 100.0 + max(0.2, (100 - low) * 0.05))
    ax.set_ylabel("SLI %")
    ax.set_title(f"{series.slo}: SLI over {series.sli_window} and burn rate per window", loc="left")


def _plot_burn(ax: Axes, series: SLOSeries) -> None:
    cmap = matplotlib.colormaps["tab10"]
    top = 1.0
    for i, burn in enumerate(series.burn):
        xs, ys = _xy(burn.points)
        (line,) = ax.plot(xs, ys, color=cmap(i % 10), linewidth=1.1, label=f"burn {burn.label}")
        line.set_gid(f"burn-{burn.label}")
        top = max([top, *(y for y in ys if not math.isnan(y))])
    for i, th in enumerate(series.burn_thresholds):
        _threshold_line(ax, i, th).set_gid(f"burn-threshold-{i}")
        top = max([top, *th.values()])
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(0, top * 2)
    ax.set_ylabel("burn rate (×budget)")


def _threshold_line(ax: Axes, index: int, th: Threshold, scale: float = 1.0) -> Line2D:
    """A condition's threshold: horizontal, or per step when it moves with the traffic
    (a traffic-aware SLO; gaps where no threshold could be crossed)."""
    style: dict[str, Any] = {
        "color": SEVERITY_COLORS.get(th.severity, "grey"),
        "linestyle": LINE_STYLES[index % len(LINE_STYLES)],
        "linewidth": 0.8,
        "label": th.label,
    }
    if not th.points:
        return ax.axhline(th.value * scale, **style)
    xs, ys = _xy(th.points, scale)
    (line,) = ax.plot(xs, ys, **style)
    return line


def _shade(
    ax: Axes,
    panel: str,
    alerts: Sequence[AlertSpan],
    faults: Sequence[FaultInterval],
    start: float,
    end: float,
) -> None:
    for i, fault in enumerate(faults):
        span = _axvspan(
            ax,
            _dt(max(fault.start, start)),
            _dt(min(end, fault.end if fault.end is not None else end)),
            color=FAULT_COLOR,
            alpha=0.13,
            linewidth=0,
            label="fault",
        )
        span.set_gid(f"{panel}-fault-{i}")
    for i, alert in enumerate(alerts):
        observed = alert.source == "prometheus"
        span = _axvspan(
            ax,
            _dt(max(alert.start, start)),
            _dt(min(end, alert.end if alert.end is not None else end)),
            ymin=0.0 if observed else 0.94,
            ymax=0.06 if observed else 1.0,
            color=SEVERITY_COLORS.get(alert.severity, "grey"),
            alpha=0.55,
            linewidth=0,
            label=f"{alert.severity} firing ({'Prometheus' if observed else 'backtest'})",
        )
        span.set_gid(f"{panel}-alert-{alert.severity}-{i}")


def _axvspan(ax: Axes, x0: datetime, x1: datetime, **style: Any) -> Rectangle:
    """``Axes.axvspan`` between two datetimes: matplotlib converts them on the date axis,
    but its stubs take only floats."""
    return ax.axvspan(x0, x1, **style)  # type: ignore[arg-type]


def _legend(ax: Axes) -> None:
    """One entry per label (shaded spans repeat), outside the plot on the right."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0))


def inline_svg(svg: str, prefix: str, title: str) -> str:
    """matplotlib's standalone SVG → an ``<svg>`` element for an HTML5 page.

    Drops the XML declaration, DOCTYPE (a URL), RDF metadata (URLs) and
    namespace declarations (HTML5 needs none), uses SVG 2 ``href`` instead of
    ``xlink:href``, scales with the page, and prefixes every id with ``prefix``.
    """
    for pattern in _STRIP:
        svg = pattern.sub("", svg)
    svg = svg.replace("xlink:href=", "href=")
    svg = re.sub(r"\s*\n\s*", "\n", svg)  # indentation is a third of matplotlib's output
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = _REF.sub(lambda m: m[1] + (f"{prefix}-{m[2]}" if m[2] in ids else m[2]), svg)
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return svg.replace("<svg", f'<svg width="100%" role="img" aria-label="{escaped}"', 1).strip()
