"""JSON Schema (Draft 2020-12) of the tokenslo v1 SLO file.

The loader validates every file against exactly this schema, and
``tokenslo slo schema`` prints it for editors, so what the editor flags and
what ``slo validate`` rejects cannot drift apart. Checks a schema cannot
express (duplicate names across files, PromQL syntax, window ordering) live in
``tokenslo.spec.checks``.
"""

from __future__ import annotations

import copy
from typing import Any

VERSION = "tokenslo/v1"
SCHEMA_ID = "https://tokenslo.dev/schema/slo-v1.json"

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
# Same grammar as tokenslo.core.durations: one or more <number><unit> parts.
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w|y))+$"
LABEL_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"

_NAME = {"type": "string", "pattern": NAME_PATTERN}
_DURATION = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "description": "Prometheus-style duration, e.g. 30s, 5m, 1h, 30d",
}
_LABELS = {
    "type": "object",
    "propertyNames": {"pattern": LABEL_NAME_PATTERN},
    "additionalProperties": {"type": "string"},
    "description": "Prometheus label names to string values (quote numbers)",
}
_PROMQL = {
    "type": "string",
    "minLength": 1,
    "description": "PromQL; {{window}} is replaced by each evaluation window",
}


def strict_object(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict:
    """A JSON Schema object with exactly these properties (unknown keys are mistakes)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


_EVENTS = strict_object(
    {"good": _PROMQL, "bad": _PROMQL, "total": _PROMQL},
    ("total",),
    oneOf=[{"required": ["good"]}, {"required": ["bad"]}],
    description="Ratio of events: exactly one of good / bad, plus total",
)
_LATENCY = strict_object(
    {
        "metric": {
            "type": "string",
            "pattern": METRIC_NAME_PATTERN,
            "description": "histogram base name, without _bucket",
        },
        "selector": {"type": "string", "description": "label matchers, braces optional"},
        "threshold": {
            "type": "number",
            "exclusiveMinimum": 0,
            "description": "seconds; must equal one of the histogram's le buckets",
        },
    },
    ("metric", "threshold"),
    description="Share of histogram observations at or under threshold",
)
_SLI = strict_object(
    {"events": _EVENTS, "latency": _LATENCY},
    oneOf=[{"required": ["events"]}, {"required": ["latency"]}],
    description="Exactly one of events / latency",
)
_BURN_WINDOW = strict_object(
    {
        "severity": {"enum": ["page", "ticket"]},
        "budget_percent": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": "share of the period's error budget consumed over long_window",
        },
        "long_window": _DURATION,
        "short_window": _DURATION,
        "for": _DURATION,
    },
    ("severity", "budget_percent", "long_window", "short_window"),
)
_ALERTING = strict_object(
    {
        "page": {"type": "boolean"},
        "ticket": {"type": "boolean"},
        "labels": _LABELS,
        "annotations": {**_LABELS, "description": "alert annotations, e.g. runbook_url"},
        "policy": {"type": "array", "minItems": 1, "items": _BURN_WINDOW},
        "burn_rate": {
            "enum": ["static", "traffic-aware"],
            "description": "static (default): threshold = budget_percent x window / long_window"
            " x (1 - objective); traffic-aware: the period's events over the long window's"
            " events replace window / long_window (Pyrra's dynamic burn rates)",
        },
    }
)
_LOADTEST = strict_object(
    {
        "requests": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Locust request names this SLO gates",
        },
        "min_requests": {
            "type": "integer",
            "minimum": 1,
            "description": "requests a load-test check needs to pass; "
            "default ceil(3 / (1 - objective)), the rule of three",
        },
    }
)
_TIMESLICES = strict_object(
    {
        "window": {**_DURATION, "description": "length of one slice, e.g. 1m"},
        "method": {
            "enum": ["good-slices", "mean-ratio"],
            "description": "good-slices (default): share of slices at or above target;"
            " mean-ratio: mean of the slices' good-event ratios (OpenSLO RatioTimeslices)",
        },
        "target": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 100,
            "description": "percent of good events a slice needs to count as good, e.g. 95",
        },
    },
    ("window",),
    description="Timeslices budgeting: the objective applies to the share of good slices"
    " (method good-slices, the default, with a target) or to the mean of the slices'"
    " good-event ratios (method mean-ratio, no target); slices without events are not"
    " counted; absent: the share of good events",
    # a good-slices block needs its target (a mean-ratio one with a target: checks.py)
    **{
        "if": {"properties": {"method": {"const": "good-slices"}}},  # or method absent
        "then": {"required": ["target"]},
    },
)
_CALENDAR = strict_object(
    {
        "period": {"enum": ["day", "week", "month", "quarter", "year"]},
        "timezone": {
            "type": "string",
            "minLength": 1,
            "description": "IANA time zone the periods start in (local midnight), default UTC",
        },
    },
    ("period",),
    description="Calendar-aligned budget: slo status counts from the start of the current"
    " period (weeks start on Monday); alerts stay on the rolling window",
)
_SLO = strict_object(
    {
        "name": _NAME,
        "description": {"type": "string"},
        "objective": {
            "type": "number",
            "exclusiveMinimum": 0,
            "exclusiveMaximum": 100,
            "description": "percent of good events, e.g. 99.9",
        },
        "window": _DURATION,
        "labels": _LABELS,
        "sli": _SLI,
        "alerting": _ALERTING,
        "loadtest": _LOADTEST,
        "timeslices": _TIMESLICES,
        "calendar": _CALENDAR,
    },
    ("name", "objective", "window", "sli"),
)
_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "tokenslo SLO file (v1)",
    **strict_object(
        {
            "version": {"const": VERSION},
            "service": _NAME,
            "labels": _LABELS,
            "slos": {"type": "array", "minItems": 1, "items": _SLO},
        },
        ("version", "service", "slos"),
    ),
}


def json_schema() -> dict:
    """The schema as a fresh dict (callers may mutate their copy)."""
    return copy.deepcopy(_SCHEMA)


def alerting_schema() -> dict:
    """An SLO's ``alerting`` block alone: alert-policy files embed exactly this."""
    return copy.deepcopy(_ALERTING)
