"""Load tokenslo v1 SLO files into the one ``SLO`` model.

Pipeline per file: YAML with positions → JSON Schema → model → semantic and
PromQL checks → warnings; then names are checked for uniqueness across every
file loaded together. The first error raises ``InputError`` naming file, line,
column and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenslo.core.burnrate import default_for
from tokenslo.core.durations import parse_duration
from tokenslo.core.model import (
    GOOD_SLICES,
    SLI,
    SLO,
    STATIC,
    Alerting,
    BurnWindow,
    Calendar,
    EventsSLI,
    LatencySLI,
    Source,
    Timeslices,
)
from tokenslo.errors import InputError
from tokenslo.spec import checks
from tokenslo.spec.checks import Finding
from tokenslo.spec.validation import check_schema
from tokenslo.spec.yamlpos import Document, field_path, load_documents, read_text

__all__ = [
    "Finding",
    "LoadResult",
    "discover",
    "load_paths",
    "load_paths_with_warnings",
    "load_result",
    "load_text",
]

SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadResult:
    slos: list[SLO] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # SLO name → (document, index in its slos list), to point later errors at a field
    places: dict[str, tuple[Document, int]] = field(default_factory=dict)

    def error(self, slo: SLO, message: str, *path: str) -> InputError:
        """An InputError at ``slos[i].<path>`` of the file ``slo`` came from."""
        doc, index = self.places[slo.name]
        return doc.error(message, ("slos", index, *path))


def load_paths(paths: Sequence[str | Path]) -> list[SLO]:
    """SLOs from files and directories (``*.yaml``/``*.yml``, sorted, non-recursive)."""
    return load_result(paths).slos


def load_paths_with_warnings(paths: Sequence[str | Path]) -> tuple[list[SLO], list[Finding]]:
    result = load_result(paths)
    return result.slos, result.findings


def load_result(paths: Sequence[str | Path]) -> LoadResult:
    result = LoadResult()
    seen: dict[str, tuple[str, int | None]] = {}
    for path in discover(paths):
        text = read_text(path)
        for doc in load_documents(text, str(path)) or [Document(file=str(path), data=None)]:
            slos, findings = _load_document(doc)
            for index, slo in enumerate(slos):
                _check_unique(slo, seen, doc, index)
                result.places[slo.name] = (doc, index)
            result.slos += slos
            result.findings += findings
        result.files.append(str(path))
    return result


def load_text(text: str, file: str = "<string>") -> tuple[list[SLO], list[Finding]]:
    """Load one file's content (used for round trips and tests); names must be unique."""
    result = LoadResult()
    seen: dict[str, tuple[str, int | None]] = {}
    for doc in load_documents(text, file) or [Document(file=file, data=None)]:
        slos, findings = _load_document(doc)
        for index, slo in enumerate(slos):
            _check_unique(slo, seen, doc, index)
        result.slos += slos
        result.findings += findings
    return result.slos, result.findings


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Files named directly, plus the YAML files directly inside named directories."""
    if not paths:
        raise InputError("no SLO files given")
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
            if not files:
                raise InputError("directory has no *.yaml or *.yml files", file=str(path))
            found += files
        elif path.is_file():
            found.append(path)
        else:
            raise InputError("no such file or directory", file=str(path))
    return found


def _check_unique(
    slo: SLO, seen: dict[str, tuple[str, int | None]], doc: Document, index: int
) -> None:
    if slo.name in seen:
        line, column = doc.where(("slos", index, "name"))
        raise checks.duplicate_name_error(
            slo.name, seen[slo.name], (doc.file, line, column, field_path(("slos", index, "name")))
        )
    seen[slo.name] = (doc.file, doc.where(("slos", index, "name"))[0])


def _load_document(doc: Document) -> tuple[list[SLO], list[Finding]]:
    check_schema(doc)
    data = doc.data
    slos, findings = [], []
    for index, raw in enumerate(data["slos"]):
        slo = _build_slo(doc, index, raw, data["service"], data.get("labels", {}))
        checks.check_semantics(doc, index, slo)
        checks.check_promql(doc, index, slo)
        findings += checks.warnings_for(doc, index, raw, slo)
        slos.append(slo)
    return slos, findings


# --- mapping the validated YAML onto the model ------------------------------------------------


def _build_slo(doc: Document, index: int, raw: dict, service: str, labels: dict) -> SLO:
    return SLO(
        name=raw["name"],
        service=service,
        objective=float(raw["objective"]),
        window=parse_duration(raw["window"]),
        sli=_build_sli(raw["sli"]),
        description=raw.get("description", ""),
        labels={**labels, **raw.get("labels", {})},
        alerting=build_alerting(raw.get("alerting", {})),
        loadtest=tuple(raw.get("loadtest", {}).get("requests", [])),
        loadtest_min_requests=raw.get("loadtest", {}).get("min_requests"),
        timeslices=_build_timeslices(raw.get("timeslices")),
        calendar=_build_calendar(raw.get("calendar")),
        source=Source(doc.file, doc.where(("slos", index))[0]),
    )


def _build_timeslices(raw: dict | None) -> Timeslices | None:
    if raw is None:
        return None
    target = raw.get("target")
    return Timeslices(
        window=parse_duration(raw["window"]),
        target=None if target is None else float(target),
        method=raw.get("method", GOOD_SLICES),
    )


def _build_calendar(raw: dict | None) -> Calendar | None:
    if raw is None:
        return None
    return Calendar(period=raw["period"], timezone=raw.get("timezone", "UTC"))


def _build_sli(raw: dict) -> SLI:
    if "events" in raw:
        events = raw["events"]
        return EventsSLI(total=events["total"], good=events.get("good"), bad=events.get("bad"))
    latency = raw["latency"]
    return LatencySLI(
        metric=latency["metric"],
        threshold=float(latency["threshold"]),
        selector=strip_braces(latency.get("selector", "")),
    )


def strip_braces(selector: str) -> str:
    """``'{a="b"}'`` → ``'a="b"'``: the model keeps matchers without braces."""
    inner = selector.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    return inner


def build_alerting(raw: dict[str, Any]) -> Alerting:
    """A validated ``alerting`` block as the model (SLO files and alert-policy files)."""
    policy = raw.get("policy")
    return Alerting(
        page=raw.get("page", True),
        ticket=raw.get("ticket", True),
        labels=dict(raw.get("labels", {})),
        annotations=dict(raw.get("annotations", {})),
        policy=None if policy is None else tuple(_build_window(w) for w in policy),
        burn_rate=raw.get("burn_rate", STATIC),
    )


def _build_window(raw: dict) -> BurnWindow:
    short = parse_duration(raw["short_window"])
    return BurnWindow(
        severity=raw["severity"],
        budget_fraction=float(raw["budget_percent"]) / 100.0,
        long_window=parse_duration(raw["long_window"]),
        short_window=short,
        for_=parse_duration(raw["for"]) if "for" in raw else default_for(raw["severity"], short),
    )
