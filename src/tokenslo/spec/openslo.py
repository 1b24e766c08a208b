"""Import OpenSLO v1 (``apiVersion: openslo/v1``) SLOs into the tokenslo model, partially.

Supported: ``kind: SLO`` with an inline ``indicator`` or an ``indicatorRef`` to a
``kind: SLI`` in the same file; ``ratioMetric`` (good or bad, plus total) and
``thresholdMetric`` (a histogram, ``op: lte``) whose ``metricSource`` is of type
Prometheus, inline or through ``metricSourceRef`` to a ``kind: DataSource`` in the
same file; one rolling ``timeWindow``, or a calendar one of a day, week, month,
quarter or year; one objective; ``budgetingMethod: Occurrences``, ``Timeslices``
(the objective's ``timeSliceTarget`` and ``timeSliceWindow``) or ``RatioTimeslices``
(``timeSliceWindow``; the mean of the slices' ratios).

Two kinds of trouble are told apart. Invalid input (not OpenSLO v1, a missing
required field, a field of the wrong type, broken PromQL) raises ``InputError``:
nothing is imported. A valid object that tokenslo cannot express faithfully
(calendar windows not opening on a period start, other data
sources, raw ratios, …) is *skipped* with a reason and the rest of the file is still
imported, rather than any SLO being imported with a meaning it did not have.
docs/slo-spec.md lists the mapping.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import promql_parser
import yaml

from tokenslo.core.calendar import NOMINAL_WINDOWS, OPENSLO_PERIODS, period_bounds, timezone_error
from tokenslo.core.durations import parse_duration
from tokenslo.core.model import (
    MEAN_RATIO,
    SLI,
    Calendar,
    EventsSLI,
    LatencySLI,
    Source,
    Timeslices,
)
from tokenslo.core.model import SLO as SLOModel
from tokenslo.core.promql import WINDOW_PLACEHOLDER, sli_exprs
from tokenslo.errors import InputError
from tokenslo.spec.checks import PARSE_WINDOW, promql_error
from tokenslo.spec.loader import load_text
from tokenslo.spec.schema import LABEL_NAME_PATTERN, VERSION
from tokenslo.spec.writer import slo_mapping
from tokenslo.spec.yamlpos import Document, load_documents, read_text

API_VERSION = "openslo/v1"
KINDS = {"SLO", "SLI", "DataSource"}
# Valid OpenSLO kinds that carry nothing tokenslo imports (it alerts with its own policy).
IGNORED_KINDS = {"Service", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
BUDGETING_METHODS = {"Occurrences", "Timeslices", "RatioTimeslices"}
# What OpenSLO cannot hold is kept in these annotations (written by the export), as the
# JSON of the tokenslo v1 ``alerting`` / ``loadtest`` blocks.
EXTRA_ANNOTATIONS = {"tokenslo/alerting": "alerting", "tokenslo/loadtest": "loadtest"}
# A description longer than OpenSLO allows is kept whole here.
DESCRIPTION_ANNOTATION = "tokenslo/description"
MAX_DESCRIPTION = 1050
# Sloth and others spell the placeholder as a Go template.
_GO_WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")
# OpenSLO's month, quarter and year shorthands: calendar units without a fixed length.
_CALENDAR_DURATION = re.compile(r"^\d+[MQY]$")
_HISTOGRAM_SUFFIX = "_bucket"


class Skip(Exception):
    """A valid OpenSLO construct tokenslo cannot express; the object is skipped."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason

    @classmethod
    def of_all(cls, skips: list[Skip]) -> Skip:
        """One skip naming every reason, at the first one's line."""
        also = "".join(f"; also: {s.reason}" for s in skips[1:])
        return cls(skips[0].line, skips[0].reason + also)


@dataclass(frozen=True)
class Skipped:
    """One object not imported (``verb`` skipped) or deliberately ignored, and why."""

    file: str
    line: int
    kind: str
    name: str
    reason: str
    verb: str = "skipped"

    def format(self) -> str:
        return f"{self.file}:{self.line}: {self.kind} {self.name}: {self.verb}: {self.reason}"


@dataclass
class Imported:
    """The SLOs converted, the objects skipped (exit 1) and those ignored (notes only)."""

    slos: list[SLOModel] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    ignored: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Node:
    """A value in an OpenSLO document together with its path, so errors can point at it."""

    doc: Document
    path: tuple
    value: Any

    @property
    def line(self) -> int:
        return self.doc.where(self.path, key=True)[0]

    def error(self, message: str, key: str | int | None = None) -> InputError:
        path = self.path if key is None else (*self.path, key)
        return self.doc.error(message, path, key=True)

    def skip(self, reason: str, key: str | None = None) -> Skip:
        path = self.path if key is None else (*self.path, key)
        return Skip(self.doc.where(path, key=True)[0], reason)

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


@dataclass(frozen=True)
class Library:
    """The file's SLIs and DataSources by name, for indicatorRef and metricSourceRef."""

    slis: dict[str, Node]
    sources: dict[str, Node]


def import_openslo(path: str | Path) -> Imported:
    """Every ``kind: SLO`` of an OpenSLO v1 file that tokenslo can express; the rest skipped."""
    file = str(path)
    objects = _objects(load_documents(read_text(path), file))
    if not objects:
        raise InputError("no OpenSLO objects in file", file=file, line=1)
    library = Library(_by_name(objects, "SLI"), _by_name(objects, "DataSource"))
    for source in library.sources.values():
        source.get("spec", dict).get("type", str)  # checked even when nothing refers to it
    result = Imported()
    for obj in objects:
        kind, name = _kind(obj), _name(obj).value
        if kind in IGNORED_KINDS - {"Service"}:  # a Service is a name and a description
            reason = "tokenslo alerts with its own multi-window burn-rate policy"
            result.ignored.append(Skipped(file, obj.line, f"kind {kind}", name, reason, "ignored"))
        if kind != "SLO":
            continue
        try:
            result.slos.append(_slo(obj, library))
        except Skip as skip:
            result.skipped.append(Skipped(file, skip.line, "kind SLO", name, skip.reason))
    if not any(_kind(o) == "SLO" for o in objects):
        raise InputError("no kind: SLO objects in file", file=file, line=1)
    _check_unique(result.slos)
    return result


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
            if kind.value not in KINDS | IGNORED_KINDS:
                known = ", ".join(sorted(KINDS | IGNORED_KINDS))
                raise kind.error(f"unsupported kind {kind.value!r}; OpenSLO v1 has {known}")
            _name(obj)
            objects.append(obj)
    return objects


def _kind(obj: Node) -> str:
    return obj.value["kind"]


def _name(obj: Node) -> Node:
    return obj.get("metadata", dict).get("name", str)


def _by_name(objects: list[Node], kind: str) -> dict[str, Node]:
    found: dict[str, Node] = {}
    for obj in objects:
        if _kind(obj) != kind:
            continue
        name = _name(obj)
        if name.value in found:
            first = found[name.value].line
            raise name.error(
                f"two kind: {kind} objects named {name.value!r} (first at line {first})"
            )
        found[name.value] = obj
    return found


def _slo(obj: Node, library: Library) -> SLOModel:
    """Checks every field it can before skipping: an invalid field is an error even in an
    object that would be skipped anyway."""
    metadata = obj.get("metadata", dict)
    spec = obj.get("spec", dict)
    name = _identifier(metadata.get("name", str))
    service = _identifier(spec.get("service", str))
    skips: list[Skip] = []
    method = _budgeting(spec, skips)
    window, calendar = _window(spec, skips)
    objective, percent = _objectives(spec.get("objectives", list), skips)
    timeslices = _timeslices(objective, window, method, skips)
    annotations = metadata.get("annotations", dict, required=False)
    labels = _labels(metadata.get("labels", dict, required=False))
    try:
        indicator = _indicator(spec, library)
        sli = _sli(indicator, objective, library)
    except Skip as skip:
        ref = spec.value.get("indicatorRef")
        if ref in library.slis:  # the reason sits in another object: say which
            skip = Skip(skip.line, f"indicatorRef {ref!r} (kind SLI): {skip.reason}")
        skips.append(skip)
    if skips:
        raise Skip.of_all(skips)
    for expr in sli_exprs(sli, PARSE_WINDOW):
        problem = promql_error(expr)
        if problem:
            raise indicator.error(f"the imported SLI builds invalid PromQL ({problem}): {expr}")
    slo = SLOModel(
        name=name,
        service=service,
        objective=percent,
        window=window,
        sli=sli,
        description=_description(spec, metadata, annotations),
        labels=labels,
        timeslices=timeslices,
        calendar=calendar,
        source=Source(obj.doc.file, obj.doc.where(obj.path)[0]),
    )
    return _with_extras(slo, annotations)


def _budgeting(spec: Node, skips: list[Skip]) -> str:
    """The budgeting method (Occurrences when absent)."""
    method = spec.get("budgetingMethod", str, required=False)
    if method.value is None:
        return "Occurrences"
    if method.value not in BUDGETING_METHODS:
        known = ", ".join(sorted(BUDGETING_METHODS))
        raise method.error(f"unknown budgetingMethod {method.value!r}; OpenSLO v1 has {known}")
    return method.value


def _timeslices(
    objective: Node, window: float, method: str, skips: list[Skip]
) -> Timeslices | None:
    """Timeslices: the objective's ``timeSliceTarget`` (a ratio, (0, 1]) and
    ``timeSliceWindow``; RatioTimeslices: the window alone (the mean of the slices'
    ratios needs no target; one given is not used). None for Occurrences."""
    if method == "RatioTimeslices":
        seconds = _slice_window(objective, window, skips)
        return None if seconds is None else Timeslices(window=seconds, method=MEAN_RATIO)
    if method != "Timeslices":
        return None
    target = objective.get("timeSliceTarget", (int, float))
    if isinstance(target.value, bool) or not 0 < target.value <= 1:
        raise target.error(f"timeSliceTarget must be in (0, 1], got {target.value}")
    seconds = _slice_window(objective, window, skips)
    if seconds is None:
        return None
    return Timeslices(window=seconds, target=round(float(target.value) * 100, 10))


def _slice_window(objective: Node, window: float, skips: list[Skip]) -> float | None:
    """The objective's ``timeSliceWindow`` in seconds (None: a skip)."""
    length = objective.get("timeSliceWindow", (str, int, float))
    if not isinstance(length.value, str):
        skips.append(
            length.skip(f"timeSliceWindow {length.value} has no unit; write a duration such as 1m")
        )
        return None
    try:
        seconds = parse_duration(length.value)
    except ValueError as exc:
        raise length.error(str(exc)) from None
    if window and not 0 < seconds < window:
        raise length.error(
            f"timeSliceWindow {length.value} must be longer than 0s and shorter than the"
            " time window"
        )
    return seconds


def _window(spec: Node, skips: list[Skip]) -> tuple[float, Calendar | None]:
    """Seconds of the one rolling window (0 when the window is a skip), or of a calendar
    window's nominal period (the window tokenslo alerts on) with its calendar."""
    if not spec.has("timeWindow"):
        skips.append(spec.skip("no timeWindow; tokenslo needs one rolling window", "timeWindow"))
        return 0, None
    windows = spec.get("timeWindow", list)
    if len(windows.value) != 1:
        raise windows.error(f"exactly one time window allowed, found {len(windows.value)}")
    window = windows.items()[0]
    duration = window.get("duration", str)
    rolling = window.get("isRolling", bool, required=False).value
    calendar = window.get("calendar", dict, required=False)
    calendar_unit = _CALENDAR_DURATION.match(duration.value)
    try:
        seconds = 0.0 if calendar_unit else parse_duration(duration.value)
    except ValueError as exc:
        raise duration.error(str(exc)) from None
    if calendar.value is not None:
        if rolling is True:
            raise window.error("a calendar window cannot be rolling (isRolling: true)", "isRolling")
        return _calendar(duration, calendar, skips)
    if rolling is False:
        skips.append(window.skip("isRolling: false without a calendar", "isRolling"))
    elif rolling is not True:
        raise window.error("missing isRolling: true (or a calendar)", "isRolling")
    elif calendar_unit:
        skips.append(
            duration.skip(
                f"rolling window {duration.value} has no fixed length (months, quarters and "
                "years vary); write it in days or weeks"
            )
        )
    elif seconds <= 0:
        raise duration.error("window must be longer than 0s")
    return seconds, None


def _calendar(duration: Node, calendar: Node, skips: list[Skip]) -> tuple[float, Calendar | None]:
    """A calendar window of one day, week, month, quarter or year whose ``startTime`` opens
    such a period in ``timeZone`` (default UTC); other anchors and lengths are skips."""
    zone = calendar.get("timeZone", str, required=False)
    timezone = zone.value or "UTC"
    problem = timezone_error(timezone)
    if problem:
        raise zone.error(problem)
    start = calendar.get("startTime", (str, datetime))  # YAML reads a bare one as a time
    anchor = start.value
    if isinstance(anchor, str):
        try:
            anchor = datetime.strptime(anchor, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise start.error(f"not a time 'YYYY-MM-DD hh:mm:ss': {anchor!r}") from None
    if anchor.tzinfo is not None:
        raise start.error("startTime is a local time without offset (timeZone says the zone)")
    period = OPENSLO_PERIODS.get(duration.value)
    if period is None:
        known = ", ".join(OPENSLO_PERIODS)
        skips.append(duration.skip(f"calendar window {duration.value}: tokenslo has {known}"))
        return 0, None
    model = Calendar(period=period, timezone=timezone)
    opens = anchor.replace(tzinfo=ZoneInfo(timezone)).timestamp()
    if period_bounds(model, opens)[0] != opens:
        skips.append(
            start.skip(
                f"startTime {anchor:%Y-%m-%d %H:%M:%S} does not open a {period}: tokenslo's"
                " periods start at local midnight (weeks on Monday, months on the 1st,"
                " quarters in Jan/Apr/Jul/Oct)"
            )
        )
        return 0, None
    return NOMINAL_WINDOWS[period], model


def _objectives(items: Node, skips: list[Skip]) -> tuple[Node, float]:
    """The one objective and its percent; every objective's target is checked."""
    if not items.value:
        raise items.error("at least one objective is required")
    objectives = items.items()
    percents = [_objective(o) for o in objectives]
    if len(objectives) > 1:
        skips.append(
            items.skip(
                f"{len(objectives)} objectives; tokenslo has one objective per SLO (split it "
                "into several SLOs)"
            )
        )
    for key in ("indicator", "indicatorRef", "compositeWeight"):
        if objectives[0].has(key):
            skips.append(
                objectives[0].skip(f"composite SLOs ({key} in an objective) are not supported", key)
            )
    return objectives[0], percents[0]


def _objective(objective: Node) -> float:
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


def _indicator(spec: Node, library: Library) -> Node:
    if spec.has("indicator"):
        return spec.get("indicator", dict).get("spec", dict)
    if spec.has("indicatorRef"):
        ref = spec.get("indicatorRef", str)
        if ref.value not in library.slis:
            known = ", ".join(sorted(library.slis)) or "none"
            raise ref.skip(f"no kind: SLI named {ref.value!r} in this file (found: {known})")
        return library.slis[ref.value].get("spec", dict)
    raise spec.error("missing indicator or indicatorRef", "indicator")


def _sli(indicator: Node, objective: Node, library: Library) -> SLI:
    if indicator.has("ratioMetric"):
        return _ratio(indicator.get("ratioMetric", dict), library)
    if indicator.has("thresholdMetric"):
        return _threshold(indicator.get("thresholdMetric", dict), objective, library)
    raise indicator.error("expected ratioMetric or thresholdMetric", "ratioMetric")


def _ratio(ratio: Node, library: Library) -> EventsSLI:
    if ratio.has("raw") or ratio.has("rawType"):
        _raw(ratio, library)
    if ratio.has("good") == ratio.has("bad"):
        raise ratio.error("set exactly one of good / bad")
    counter = ratio.get("counter", bool, required=False).value is not False
    side = "good" if ratio.has("good") else "bad"
    numerator = _windowed(_query(ratio.get(side, dict), library), counter)
    total = _windowed(_query(ratio.get("total", dict), library), counter)
    return EventsSLI(total=total, **{side: numerator})


def _raw(ratio: Node, library: Library) -> None:
    """Always skips: a precomputed ratio has lost the event counts tokenslo works from.

    Averaging a stored ratio over a window weighs each scrape alike, not each event,
    and burn rates, no-traffic detection and the load-test gate all need counts.
    """
    for key in ("good", "bad", "total"):
        if ratio.has(key):
            raise ratio.error(f"raw cannot be combined with {key}", key)
    kind = ratio.get("rawType", str)
    if kind.value not in ("success", "failure"):
        raise kind.error(f"rawType must be success or failure, got {kind.value!r}")
    _query(ratio.get("raw", dict), library)  # a non-Prometheus source is named first
    raise ratio.skip(
        f"raw ratio metrics (rawType: {kind.value}) are a precomputed ratio, not event "
        "counts; tokenslo needs good or bad plus total to count events",
        "raw",
    )


def _query(metric: Node, library: Library) -> Node:
    source = metric.get("metricSource", dict)
    kind = source.get("type", str, required=not source.has("metricSourceRef"))
    if source.has("metricSourceRef"):
        ref = source.get("metricSourceRef", str)
        if ref.value not in library.sources:
            known = ", ".join(sorted(library.sources)) or "none"
            raise ref.skip(f"no kind: DataSource named {ref.value!r} in this file (found: {known})")
        declared = library.sources[ref.value].get("spec", dict).get("type", str)
        if kind.value is not None and kind.value.lower() != declared.value.lower():
            raise kind.skip(
                f"type {kind.value!r} differs from DataSource {ref.value!r}'s type "
                f"{declared.value!r}"
            )
        kind = declared
    if kind.value.lower() != "prometheus":
        raise kind.skip(f"metricSource type {kind.value!r} is not supported; only Prometheus")
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
        raise query.skip(
            "query has no {{window}} placeholder and is not a counter selector (or a sum of "
            "one); write it as e.g. sum(rate(metric{...}[{{window}}]))"
        )
    if not counter:
        raise query.skip("counter: false (a gauge) needs a query with a {{window}} placeholder")
    selector = str(expr).removesuffix("{}")
    return f"sum(rate({selector}[{{{{window}}}}]))"


def _threshold(metric: Node, objective: Node, library: Library) -> LatencySLI:
    op = objective.get("op", str)
    if op.value not in ("lte", "lt", "gte", "gt"):
        raise op.error(f"op must be one of lte, lt, gte, gt, got {op.value!r}")
    skips: list[Skip] = []
    if op.value != "lte":
        skips.append(
            op.skip(
                f"op {op.value} is not supported for thresholdMetric; only lte maps to a "
                "Prometheus histogram bucket (le)"
            )
        )
    value = objective.get("value", (int, float))
    if value.value <= 0:
        skips.append(value.skip("value must be a positive latency threshold in seconds"))
    try:
        query = _query(metric, library)
    except Skip as skip:
        skips.append(skip)
    if skips:  # every reason at once, so one edit of the file is enough
        raise Skip.of_all(skips)
    expr = _parse(query, query.value)
    if not isinstance(expr, promql_parser.VectorSelector) or not expr.name:
        raise query.skip(
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
            raise query.skip(
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


def _description(spec: Node, metadata: Node, annotations: Node) -> str:
    """The whole text the export kept in an annotation wins over the one cut to size."""
    candidates = [
        spec.get("description", str, required=False),
        metadata.get("displayName", str, required=False),
    ]
    if annotations.value:
        candidates.insert(0, annotations.get(DESCRIPTION_ANNOTATION, str, required=False))
    for node in candidates:
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


def _with_extras(slo: SLOModel, annotations: Node) -> SLOModel:
    """Restore ``alerting`` and ``loadtest`` from the export's ``tokenslo/*`` annotations.

    The blocks are checked by the v1 loader itself, so they mean exactly what they
    mean in a tokenslo file; a broken one is bad input at the annotation.
    """
    blocks = {}
    for key, block in EXTRA_ANNOTATIONS.items():
        if annotations.has(key):
            node = annotations.get(key, str)
            try:
                blocks[block] = (node, json.loads(node.value))
            except json.JSONDecodeError as exc:
                raise node.error(f"not JSON: {exc.msg}") from None
    if not blocks:
        return slo
    mapping = {**slo_mapping(slo), **{block: value for block, (_, value) in blocks.items()}}
    text = yaml.safe_dump({"version": VERSION, "service": slo.service, "slos": [mapping]})
    try:
        (loaded,), _ = load_text(text, "<annotation>")
    except InputError as exc:
        node = next(iter(blocks.values()))[0]
        raise node.error(f"{exc.field or ''}: {exc.message}".lstrip(": ")) from None
    return dataclasses.replace(
        slo,
        alerting=loaded.alerting,
        loadtest=loaded.loadtest,
        loadtest_min_requests=loaded.loadtest_min_requests,
    )


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
