"""Prometheus-style durations (``5m``, ``1h30m``, ``28d``) as float seconds, and instants
(RFC 3339 or unix seconds) as unix seconds.

Kept pure and tiny because windows flow through the spec, the math, the rule
generator and the evaluator, and all of them must agree on the same spelling.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_FULL = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+$")


def parse_duration(text: str) -> float:
    """Parse ``1h30m`` → 5400.0. Raises ValueError with the offending text."""
    if not isinstance(text, str) or not _FULL.match(text.strip()):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h, 28d)")
    return float(sum(float(n) * _UNITS[u] for n, u in _PART.findall(text.strip())))


def format_duration(seconds: float) -> str:
    """Format seconds as the shortest Prometheus duration (``3600`` → ``1h``).

    Sub-second remainders are kept in milliseconds so compressed-time windows
    (``--time-scale``) stay exact.
    """
    ms = round(seconds * 1000)
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


INSTANT_HINT = "use RFC 3339 like 2024-05-01T12:00:00Z or unix seconds"


def parse_instant(value: object, hint: str = INSTANT_HINT) -> float:
    """An instant as the command line and files spell it → unix seconds: unix seconds
    (number or text) or RFC 3339 with an offset or ``Z`` (text, or the timezone-aware
    datetime YAML makes of it). Raises ValueError: a time without an offset is ambiguous."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"time without an offset: {value.isoformat()} ({hint})")
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"not a time: {value!r} ({hint})")
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"not a valid unix time: {value!r}")
        return seconds
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"not a time: {value!r} ({hint})")
    return parsed.timestamp()
