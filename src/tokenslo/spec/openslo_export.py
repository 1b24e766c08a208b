"""Export tokenslo SLOs as OpenSLO v1 documents (``tokenslo slo export-openslo``).

Each SLO becomes one ``kind: SLO`` with an inline indicator: an events SLI a
``ratioMetric`` (counter, good or bad plus total, queries with ``{{window}}`` kept),
a latency SLI a ``thresholdMetric`` on the histogram's ``_bucket`` series with
``op: lte``. Sources are inline ``type: Prometheus``: the model holds no server.
``timeslices`` becomes ``budgetingMethod: Timeslices`` (``RatioTimeslices`` with
``method: mean-ratio``), ``calendar`` a calendar window.
What OpenSLO has no field for (the burn-rate ``alerting`` block, ``loadtest``) is
written as JSON of the tokenslo v1 blocks into ``tokenslo/*`` annotations, so
``import-openslo`` gives back the same model; so is a description over OpenSLO's
1050 characters (``spec.description`` then holds it cut short). What OpenSLO cannot hold at all is
an ``InputError`` naming the SLO's file and line; nothing is written then.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import yaml

from tokenslo.core.calendar import NOMINAL_WINDOWS, OPENSLO_DURATIONS
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, EventsSLI, LatencySLI
from tokenslo.errors import InputError
from tokenslo.spec.openslo import (
    API_VERSION,
    DESCRIPTION_ANNOTATION,
    EXTRA_ANNOTATIONS,
    MAX_DESCRIPTION,
)
from tokenslo.spec.writer import number, slo_mapping

# OpenSLO object names must be RFC 1123 labels.
_RFC1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# OpenSLO duration shorthands with a fixed length (no seconds; M, Q, Y vary).
_UNITS = (("d", 86400), ("h", 3600), ("m", 60))
CALENDAR_ANCHOR = "2024-01-01 00:00:00"  # a Monday, 1 January: opens every period


def export_openslo(slos: Sequence[SLO]) -> list[dict[str, Any]]:
    """One OpenSLO ``kind: SLO`` object per SLO, in order."""
    return [_slo(slo) for slo in slos]


def dump_openslo(slos: Sequence[SLO], header: str | None = None) -> str:
    """Multi-document YAML of ``export_openslo``; ``header`` lines become comments."""
    documents = [
        yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100)
        for obj in export_openslo(slos)
    ]
    comment = "".join(f"# {line}".rstrip() + "\n" for line in (header or "").splitlines())
    return comment + "---\n" + "---\n".join(documents)


def _slo(slo: SLO) -> dict[str, Any]:
    if not _RFC1123.match(slo.name):
        raise _error(
            slo,
            "name",
            f"{slo.name!r} is not an OpenSLO name (RFC 1123: at most 63 lowercase letters, "
            "digits and '-'); rename the SLO",
        )
    metadata: dict[str, Any] = {"name": slo.name}
    if slo.labels:
        metadata["labels"] = dict(slo.labels)
    annotations = _annotations(slo)
    spec: dict[str, Any] = {}
    if len(slo.description) > MAX_DESCRIPTION:
        # OpenSLO caps descriptions; the full text rides along for import-openslo
        spec["description"] = slo.description[: MAX_DESCRIPTION - 1] + "…"
        annotations[DESCRIPTION_ANNOTATION] = slo.description
    elif slo.description:
        spec["description"] = slo.description
    if annotations:
        metadata["annotations"] = annotations
    spec["service"] = slo.service
    spec["indicator"] = {"metadata": {"name": slo.name}, "spec": _indicator(slo.sli)}
    spec["timeWindow"] = [_time_window(slo)]
    spec["budgetingMethod"] = budgeting_method(slo)
    spec["objectives"] = [_objective(slo)]
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": spec}


def budgeting_method(slo: SLO) -> str:
    """Occurrences, Timeslices (good slices) or RatioTimeslices (mean of slice ratios)."""
    if slo.timeslices is None:
        return "Occurrences"
    return "RatioTimeslices" if slo.timeslices.mean_ratio else "Timeslices"


def _annotations(slo: SLO) -> dict[str, str]:
    mapping = slo_mapping(slo)
    return {
        key: json.dumps(mapping[block], separators=(",", ":"))
        for key, block in EXTRA_ANNOTATIONS.items()
        if block in mapping
    }


def _indicator(sli: EventsSLI | LatencySLI) -> dict[str, Any]:
    if isinstance(sli, EventsSLI):
        side = "good" if sli.good is not None else "bad"
        numerator = sli.good if sli.good is not None else sli.bad
        return {
            "ratioMetric": {
                "counter": True,
                side: _source(str(numerator)),
                "total": _source(sli.total),
            }
        }
    selector = f"{{{sli.selector}}}" if sli.selector else ""
    return {"thresholdMetric": _source(f"{sli.metric}_bucket{selector}")}


def _source(query: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": query}}}


def _objective(slo: SLO) -> dict[str, Any]:
    objective: dict[str, Any] = {}
    if isinstance(slo.sli, LatencySLI):
        objective = {"op": "lte", "value": number(slo.sli.threshold)}
    objective["targetPercent"] = number(slo.objective)
    if slo.timeslices is not None and slo.timeslices.target is not None:
        objective["timeSliceTarget"] = number(round(slo.timeslices.target / 100, 12))
    if slo.timeslices is not None:
        objective["timeSliceWindow"] = _shorthand(slo, slo.timeslices.window, "timeslices.window")
    return objective


def _time_window(slo: SLO) -> dict[str, Any]:
    """Rolling, or a calendar window opening on a period start (Monday 1 January 2024
    opens every kind of period). OpenSLO has one window: a calendar SLO's rolling window
    (the one its alerts use) must be its period's nominal length to come back on import."""
    if slo.calendar is None:
        return {"duration": _duration(slo), "isRolling": True}
    nominal = NOMINAL_WINDOWS[slo.calendar.period]
    if slo.window != nominal:
        raise _error(
            slo,
            "window",
            f"a calendar {slo.calendar.period} exports with window {format_duration(nominal)}"
            f" only (OpenSLO holds one time window; import gives it that length), not"
            f" {format_duration(slo.window)}",
        )
    return {
        "duration": OPENSLO_DURATIONS[slo.calendar.period],
        "calendar": {"startTime": CALENDAR_ANCHOR, "timeZone": slo.calendar.timezone},
    }


def _duration(slo: SLO) -> str:
    return _shorthand(slo, slo.window, "window")


def _shorthand(slo: SLO, seconds: float, field: str) -> str:
    """``seconds`` as an OpenSLO shorthand: whole days, hours or minutes."""
    for unit, size in _UNITS:
        count, rest = divmod(seconds, size)
        if not rest and count:
            return f"{int(count)}{unit}"
    raise _error(
        slo,
        field,
        f"{seconds:g}s is not a whole number of minutes; OpenSLO durations have no seconds",
    )


def _error(slo: SLO, field: str, message: str) -> InputError:
    file, line = (slo.source.file, slo.source.line) if slo.source else (None, None)
    return InputError(message, file=file, line=line, field=field)
