"""Write SLOs back as tokenslo v1 YAML (used by ``slo import-openslo``).

The output loads back to the same model (``load_text(dump_v1(x)) == x`` up to
``source``), so an import can be reviewed and committed as an ordinary SLO file.
One YAML document is written per service, since a v1 document has one service.
"""

from __future__ import annotations

from typing import Any

import yaml

from tokenslo.core.durations import format_duration
from tokenslo.core.model import (
    SLO,
    STATIC,
    Alerting,
    BurnWindow,
    EventsSLI,
    LatencySLI,
    Timeslices,
)
from tokenslo.spec.schema import VERSION


def dump_v1(slos: list[SLO], header: str | None = None) -> str:
    """YAML text for ``slos``; ``header`` lines are written as leading comments."""
    services: dict[str, list[SLO]] = {}
    for slo in slos:
        services.setdefault(slo.service, []).append(slo)
    documents = [
        yaml.safe_dump(
            {"version": VERSION, "service": service, "slos": [slo_mapping(s) for s in group]},
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
        for service, group in services.items()
    ]
    comment = "".join(f"# {line}".rstrip() + "\n" for line in (header or "").splitlines())
    return comment + "---\n".join(documents)


def slo_mapping(slo: SLO) -> dict[str, Any]:
    """One SLO as a v1 ``slos:`` item (also used to check the OpenSLO export's annotations)."""
    out: dict[str, Any] = {"name": slo.name}
    if slo.description:
        out["description"] = slo.description
    out["objective"] = number(slo.objective)
    out["window"] = format_duration(slo.window)
    if slo.labels:
        out["labels"] = dict(slo.labels)
    out["sli"] = _sli(slo.sli)
    if slo.alerting != Alerting():
        out["alerting"] = _alerting(slo.alerting)
    if slo.loadtest:
        out["loadtest"] = {"requests": list(slo.loadtest)}
    if slo.loadtest_min_requests is not None:
        out.setdefault("loadtest", {})["min_requests"] = slo.loadtest_min_requests
    if slo.timeslices is not None:
        out["timeslices"] = _timeslices(slo.timeslices)
    if slo.calendar is not None:
        out["calendar"] = {"period": slo.calendar.period, "timezone": slo.calendar.timezone}
    return out


def _timeslices(timeslices: Timeslices) -> dict[str, Any]:
    out: dict[str, Any] = {"window": format_duration(timeslices.window)}
    if timeslices.mean_ratio:
        out["method"] = timeslices.method
    if timeslices.target is not None:
        out["target"] = number(timeslices.target)
    return out


def _sli(sli: EventsSLI | LatencySLI) -> dict[str, Any]:
    if isinstance(sli, EventsSLI):
        events = {"good": sli.good} if sli.good is not None else {"bad": sli.bad}
        return {"events": {**events, "total": sli.total}}
    latency: dict[str, Any] = {"metric": sli.metric}
    if sli.selector:
        latency["selector"] = sli.selector
    latency["threshold"] = number(sli.threshold)
    return {"latency": latency}


def _alerting(alerting: Alerting) -> dict[str, Any]:
    out: dict[str, Any] = {"page": alerting.page, "ticket": alerting.ticket}
    if alerting.labels:
        out["labels"] = dict(alerting.labels)
    if alerting.annotations:
        out["annotations"] = dict(alerting.annotations)
    if alerting.policy is not None:
        out["policy"] = [_window(w) for w in alerting.policy]
    if alerting.burn_rate != STATIC:
        out["burn_rate"] = alerting.burn_rate
    return out


def _window(window: BurnWindow) -> dict[str, Any]:
    return {
        "severity": window.severity,
        # round away binary noise (0.05 * 100 = 5.000000000000001) so it loads back as 0.05
        "budget_percent": number(round(window.budget_fraction * 100, 10)),
        "long_window": format_duration(window.long_window),
        "short_window": format_duration(window.short_window),
        "for": format_duration(window.for_),
    }


def number(value: float) -> int | float:
    """Whole numbers as ints (``2`` rather than ``2.0``) for readable files."""
    return int(value) if float(value).is_integer() else float(value)
