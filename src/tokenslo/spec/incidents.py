"""Incidents files: the ground truth of a real range, for scoring alert policies.

The file is a mapping with one key, ``incidents``, a list of entries::

    incidents:
      - {slo: token-issuance-availability, start: 2026-11-30T10:00:00Z,
         end: 2026-11-30T10:20:00Z, kind: outage}

``start`` and ``end`` are RFC 3339 (with an offset or ``Z``) or unix seconds, as
``--start``/``--end``; ``slo`` (default: every SLO scored), ``kind`` (a free label,
default ``incident``), ``should_alert`` (default true: a policy that misses it loses
recall) and ``description`` are optional. Errors name file, line and field (exit 2);
the checks that need the SLOs and the range (``check``) do too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from tokenslo.core.durations import parse_instant
from tokenslo.errors import InputError
from tokenslo.spec import schema as s
from tokenslo.spec.validation import raise_first_error
from tokenslo.spec.yamlpos import read_document

DEFAULT_KIND = "incident"


@dataclass(frozen=True)
class IncidentEntry:
    start: float  # unix seconds
    end: float
    kind: str = DEFAULT_KIND
    should_alert: bool = True
    slo: str | None = None  # None: every SLO
    description: str = ""
    line: int = 0  # of the entry in its file, for later errors


@dataclass(frozen=True)
class IncidentsFile:
    file: str
    entries: tuple[IncidentEntry, ...]

    def for_slo(self, name: str) -> list[IncidentEntry]:
        """The entries naming ``name`` or no SLO, by start."""
        return sorted(
            (e for e in self.entries if e.slo in (None, name)), key=lambda e: (e.start, e.end)
        )

    def check(self, slo_names: Iterable[str], start: float, end: float) -> None:
        """Every entry names a known SLO and lies within ``[start, end]`` (exit 2)."""
        known = set(slo_names)
        for i, entry in enumerate(self.entries):
            if entry.slo is not None and entry.slo not in known:
                raise self._error(
                    i, "slo", f"unknown SLO {entry.slo!r} (known: {', '.join(sorted(known))})"
                )
            if entry.start < start:
                raise self._error(i, "start", "starts before --start: outside the scored range")
            if entry.end > end:
                raise self._error(i, "end", "ends after --end: outside the scored range")

    def _error(self, index: int, field: str, message: str) -> InputError:
        line = self.entries[index].line or None
        return InputError(message, file=self.file, line=line, field=f"incidents[{index}].{field}")


@cache
def _validator() -> Draft202012Validator:
    name = {"type": "string", "pattern": s.NAME_PATTERN}
    entry = s.strict_object(
        {
            "slo": name,
            "kind": name,
            "start": {"description": "RFC 3339 or unix seconds"},
            "end": {"description": "RFC 3339 or unix seconds"},
            "should_alert": {"type": "boolean"},
            "description": {"type": "string"},
        },
        ("start", "end"),
    )
    return Draft202012Validator(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **s.strict_object({"incidents": {"type": "array", "items": entry}}, ("incidents",)),
        }
    )


def load_incidents(path: str | Path) -> IncidentsFile:
    """Read and validate one incidents file."""
    doc = read_document(path)
    if not isinstance(doc.data, dict):
        raise InputError("expected a mapping with an incidents list", file=doc.file, line=1)
    raise_first_error(doc, _validator())
    entries = []
    for i, raw in enumerate(doc.data["incidents"]):
        times = []
        for key in ("start", "end"):
            try:
                times.append(parse_instant(raw[key]))
            except ValueError as exc:
                raise doc.error(str(exc), ("incidents", i, key)) from None
        if times[1] <= times[0]:
            raise doc.error("end must be after start", ("incidents", i, "end"))
        entries.append(
            IncidentEntry(
                start=times[0],
                end=times[1],
                kind=raw.get("kind", DEFAULT_KIND),
                should_alert=raw.get("should_alert", True),
                slo=raw.get("slo"),
                description=raw.get("description", ""),
                line=doc.where(("incidents", i))[0],
            )
        )
    return IncidentsFile(file=doc.file, entries=tuple(entries))
