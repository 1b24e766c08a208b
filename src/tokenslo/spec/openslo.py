"""Import OpenSLO v1 (``apiVersion: openslo/v1``) SLOs into the tokenslo model.

Supported: ``kind: SLO`` with an inline ``indicator`` or an ``indicatorRef`` to a
``kind: SLI`` in the same file; ``ratioMetric`` (good or bad, plus total) and
``thresholdMetric`` (a histogram, ``op: lte``) with ``metricSource.type: Prometheus``;
one rolling ``timeWindow``; one objective; ``budgetingMethod: Occurrences``.
Everything else is rejected with an InputError naming the field, rather than
imported with a meaning it did not have. docs/slo-spec.md lists the mapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser

from tokenslo.core.durations import parse_duration
from tokenslo.core.model import SLI, EventsSLI, LatencySLI, Source
from tokenslo.core.model import SLO as SLOModel
from tokenslo.core.promql import WINDOW_PLACEHOLDER, sli_exprs
from tokenslo.errors import InputError
from tokenslo.spec.checks import PARSE_WINDOW, promql_error
from tokenslo.spec.schema import LABEL_NAME_PATTERN
from tokenslo.spec.yamlpos import Document, load_documents, read_text

API_VERSION = "openslo/v1"
IGNORED_KINDS = {"Service", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
# Sloth and others spell the placeholder as a Go template.
_GO_WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")
_HISTOGRAM_SUFFIX = "_bucket"


@dataclass(frozen=True)
class Node:
    """A value in an OpenSLO document together with its path, so errors can point at it."""

    doc: Document
    path: tuple
    value: Any

    def error(self, message: str, key: str | int | None = None) -> InputError:
        path = self.path if key is None else (*self.path, key)
        return self.doc.error(message, path, key=True)

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def get(self, key: str, kind: type | tuple[type, ...] = object, required: bool = True) -> Node:
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, got {type(self.value).__name__}")
        if key not in self.value:
            if required:
                raise self.error(f"missing required field {key!r}", key)
            return Node(self.doc, (*self.path, key), None)
        child = Node(self.doc, (*self.path, key), self.value[key])
        if not isinstance(child.value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise child.error(f"expected {names}, got {type(child.value).__name__}")
        return child

    def items(self) -> list[Node]:
        return [Node(self.doc, (*self.path, i), v) for i, v in enumerate(self.value)]


def import_openslo(path: str | Path) -> list[SLOModel]:
    """All ``kind: SLO`` objects of an OpenSLO v1 file (single or multi-document)."""
    file = str(path)
    objects = _objects(load_documents(read_text(path), file))
    if not objects:
        raise InputError("no OpenSLO objects in file", file=file, line=1)
    slis = {o.get("metadata", dict).get("name", str).value: o for o in objects if _kind(o) == "SLI"}
    slos = [_slo(o, slis) for o in objects if _kind(o) == "SLO"]
    if not slos:
        raise InputError("no kind: SLO objects in file", file=file, line=1)
    _check_unique(slos)
    return slos


def _objects(docs: list[Document]) -> list[Node]:
    """Documents may each hold one object or a list of them."""
    objects = []
    for doc in docs:
        root = Node(doc, (), doc.data)
        if doc.data is None:
            continue
        candidates = root.items() if isinstance(doc.data, list) else [root]
        for obj in candidates:
            if not isinstance(obj.value, dict):
                raise obj.error("expected an OpenSLO object (a mapping with apiVersion and kind)")
            version = obj.get("apiVersion", str)
            if version.value != API_VERSION:
                raise version.error(
                    f"unsupported apiVersion {version.value!r}; expected openslo/v1"
                )
            kind = obj.get("kind", str)
            if kind.value not in {"SLO", "SLI"} | IGNORED_KINDS:
                raise kind.error(f"unsupported kind {kind.value!r}; supported: SLO, SLI")
            objects.append(obj)
    return objects


def _kind(obj: Node) -> str:
    return obj.value["kind"]


def _slo(obj: Node, slis: dict[str, Node]) -> SLOModel:
    metadata = obj.get("metadata", dict)
    spec = obj.get("spec", dict)
    _reject_unsupported(spec)
    window = _window(spec.get("timeWindow", list))
    objective = _single(spec.get("objectives", list), "objectives")
    indicator = _indicator(spec, slis)
    sli = _sli(indicator, objective)
    for expr in sli_exprs(sli, PARSE_WINDOW):
        problem = promql_error(expr)
        if problem:
            raise indicator.error(f"the imported SLI builds invalid PromQL ({problem}): {expr}")
    return SLOModel(
        name=_identifier(metadata.get("name", str)),
        service=_identifier(spec.get("service", str)),
        objective=_objective(objective),
        window=window,
        sli=sli,
        description=_description(spec, metadata),
        labels=_labels(metadata.get("labels", dict, required=False)),
        source=Source(obj.doc.file, obj.doc.where(obj.path)[0]),
    )


def _reject_unsupported(spec: Node) -> None:
    method = spec.get("budgetingMethod", str, required=False)
    if method.value not in (None, "Occurrences"):
        raise method.error(
            f"budgetingMethod {method.value!r} is not supported; tokenslo counts events "
            "(Occurrences)"
        )


def _single(items: Node, what: str) -> Node:
    if len(items.value) != 1:
        raise items.error(
            f"exactly one entry supported, found {len(items.value)} "
            f"(tokenslo has one {what[:-1]} per SLO; split it into several SLOs)"
        )
    return items.items()[0]


def _window(windows: Node) -> float:
    window = _single(windows, "timeWindows")
    if window.has("calendar") or window.get("isRolling", bool, required=False).value is not True:
        raise window.error("only rolling windows (isRolling: true) are supported", "isRolling")
    duration = window.get("duration", str)
    try:
        seconds = parse_duration(duration.value)
    except ValueError as exc:
        raise duration.error(str(exc)) from None
    if seconds <= 0:
        raise duration.error("window must be longer than 0s")
    return seconds


def _objective(objective: Node) -> float:
    for key in ("indicator", "indicatorRef", "compositeWeight", "timeSliceTarget"):
        if objective.has(key):
            raise objective.error(f"{key} is not supported (composite / timeslice SLOs)", key)
    if objective.has("targetPercent"):
        node = objective.get("targetPercent", (int, float))
        percent = float(node.value)
    else:
        node = objective.get("target", (int, float))
        if not 0 < node.value < 1:
            raise node.error(f"target must be between 0 and 1 (exclusive), got {node.value}")
        percent = round(float(node.value) * 100, 10)
    if not 0 < percent < 100:
        raise node.error(f"objective must be between 0 and 100 percent, got {percent:g}")
    return percent


def _indicator(spec: Node, slis: dict[str, Node]) -> Node:
    if spec.has("indicator"):
        return spec.get("indicator", dict).get("spec", dict)
    if spec.has("indicatorRef"):
        ref = spec.get("indicatorRef", str)
        if ref.value not in slis:
            known = ", ".join(sorted(slis)) or "none"
            raise ref.error(f"no kind: SLI named {ref.value!r} in this file (found: {known})")
        return slis[ref.value].get("spec", dict)
    raise spec.error("missing indicator or indicatorRef", "indicator")


def _sli(indicator: Node, objective: Node) -> SLI:
    if indicator.has("ratioMetric"):
        return _ratio(indicator.get("ratioMetric", dict))
    if indicator.has("thresholdMetric"):
        return _threshold(indicator.get("thresholdMetric", dict), objective)
    raise indicator.error("expected ratioMetric or thresholdMetric", "ratioMetric")


def _ratio(ratio: Node) -> EventsSLI:
    if ratio.has("raw") or ratio.has("rawType"):
        raise ratio.error("raw ratio metrics are not supported; use good or bad plus total", "raw")
    if ratio.has("good") == ratio.has("bad"):
        raise ratio.error("set exactly one of good / bad")
    counter = ratio.get("counter", bool, required=False).value is not False
    side = "good" if ratio.has("good") else "bad"
    numerator = _windowed(_query(ratio.get(side, dict)), counter)
    total = _windowed(_query(ratio.get("total", dict)), counter)
    return EventsSLI(total=total, **{side: numerator})


def _query(metric: Node) -> Node:
    source = metric.get("metricSource", dict)
    if source.has("metricSourceRef"):
        raise source.error(
            "metricSourceRef is not supported; inline the Prometheus query", "metricSourceRef"
        )
    kind = source.get("type", str)
    if kind.value.lower() != "prometheus":
        raise kind.error(f"metricSource type {kind.value!r} is not supported; only Prometheus")
    return source.get("spec", dict).get("query", str)


def _windowed(query: Node, counter: bool) -> str:
    """A PromQL string with ``{{window}}``: kept when present, else built around a counter."""
    text = _GO_WINDOW.sub("{{window}}", query.value.strip())
    if WINDOW_PLACEHOLDER.search(text):
        return text
    expr = _parse(query, text)
    if isinstance(expr, promql_parser.AggregateExpr) and str(expr.op) == "sum":
        expr = expr.expr  # grouping is dropped: the SLI sums to one series anyway
    if not isinstance(expr, promql_parser.VectorSelector) or expr.offset or expr.at:
        raise query.error(
            "query has no {{window}} placeholder and is not a counter selector (or a sum of "
            "one); write it as e.g. sum(rate(metric{...}[{{window}}]))"
        )
    if not counter:
        raise query.error("counter: false needs a query with a {{window}} placeholder")
    selector = str(expr).removesuffix("{}")
    return f"sum(rate({selector}[{{{{window}}}}]))"


def _threshold(metric: Node, objective: Node) -> LatencySLI:
    op = objective.get("op", str)
    if op.value != "lte":
        raise op.error(
            f"op {op.value!r} is not supported for thresholdMetric; only lte maps to a "
            "Prometheus histogram bucket (le)"
        )
    value = objective.get("value", (int, float))
    if value.value <= 0:
        raise value.error("value must be a positive latency threshold in seconds")
    query = _query(metric)
    expr = _parse(query, query.value)
    if not isinstance(expr, promql_parser.VectorSelector) or not expr.name:
        raise query.error(
            "thresholdMetric query must select a histogram, e.g. metric_bucket{...}; "
            "quantiles (histogram_quantile) cannot be counted as good and bad events"
        )
    _check_le(expr, query, float(value.value))
    matchers = [str(m) for m in expr.matchers.matchers if m.name not in ("le", "__name__")]
    return LatencySLI(
        metric=expr.name.removesuffix(_HISTOGRAM_SUFFIX),
        threshold=float(value.value),
        selector=", ".join(matchers),
    )


def _check_le(expr: Any, query: Node, threshold: float) -> None:
    """A bucket the query already picks (``le="0.3"``) must be the objective's threshold:
    silently counting another bucket would judge a different latency than either says."""
    for m in expr.matchers.matchers:
        if m.name != "le":
            continue
        try:
            picked = float(m.value)
        except ValueError:
            picked = None
        if picked != threshold:
            raise query.error(
                f"the query selects the bucket le={m.value!r} but the objective's value is "
                f"{threshold:g}; make them the same, or drop le from the query (the "
                "objective's value then picks the bucket)"
            )


def _parse(query: Node, text: str) -> Any:
    try:
        return promql_parser.parse(text)
    except ValueError as exc:
        raise query.error(f"invalid PromQL: {exc}") from None


def _identifier(node: Node) -> str:
    """OpenSLO names are DNS-like (and often mixed case in the wild); ours are lowercase."""
    name = re.sub(r"[^a-z0-9_-]+", "-", node.value.lower()).strip("-_")
    if not name:
        raise node.error(f"cannot make a tokenslo name from {node.value!r}")
    return name


def _description(spec: Node, metadata: Node) -> str:
    for node in (
        spec.get("description", str, required=False),
        metadata.get("displayName", str, required=False),
    ):
        if node.value:
            return node.value
    return ""


def _labels(labels: Node) -> dict[str, str]:
    """OpenSLO label values may be lists; they are joined with commas."""
    out = {}
    for key, value in (labels.value or {}).items():
        if not re.match(LABEL_NAME_PATTERN, key):
            raise labels.error(f"label {key!r} is not a Prometheus label name", key)
        values = value if isinstance(value, list) else [value]
        out[key] = ",".join(str(v) for v in values)
    return out


def _check_unique(slos: list[SLOModel]) -> None:
    seen: dict[str, int | None] = {}
    for slo in slos:
        line = slo.source.line if slo.source else None
        if slo.name in seen:
            raise InputError(
                f"two SLOs map to the name {slo.name!r} (first at line {seen[slo.name]})",
                file=slo.source.file if slo.source else None,
                line=line,
                field="metadata.name",
            )
        seen[slo.name] = line
