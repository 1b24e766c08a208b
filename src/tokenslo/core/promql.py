"""PromQL for an SLI over a window: the one place SLI queries are built.

The evaluator, the backtest and the rule generator all call ``sli_exprs`` so an
SLO means the same thing everywhere. Each expression aggregates to a single
series without labels; callers add their own labels.
"""

from __future__ import annotations

import re

from tokenslo.core.model import SLI, EventsSLI, LatencySLI, Timeslices

WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*window\s*\}\}")


def has_window_placeholder(expr: str) -> bool:
    return bool(WINDOW_PLACEHOLDER.search(expr))


def render_window(expr: str, window: str) -> str:
    """Substitute the ``{{window}}`` placeholder with a Prometheus duration."""
    return WINDOW_PLACEHOLDER.sub(window, expr)


def le_matcher(threshold: float) -> str:
    """Matcher for the bucket at ``threshold``.

    Client libraries spell whole numbers differently (Go ``1``, Python ``1.0``),
    so whole numbers match both spellings.
    """
    if float(threshold).is_integer():
        whole = str(int(threshold))
        return f'le=~"{whole}|{whole}.0"'
    return f'le="{float(threshold)!r}"'


def _matchers(selector: str, *extra: str) -> str:
    inner = selector.strip()
    if inner.startswith("{") and inner.endswith("}"):
        inner = inner[1:-1].strip()
    parts = [p for p in (inner, *extra) if p]
    return "{" + ", ".join(parts) + "}"


def sli_exprs(sli: SLI, window: str) -> tuple[str, str]:
    """``(errors, total)`` PromQL over ``window``.

    For events SLIs ``errors`` falls back to 0 when its series are absent (a healthy
    service often has no 5xx series at all), so only a missing ``total`` means "no data".
    A latency SLI's bucket has no such fallback: a histogram exports every bucket as soon
    as it has a count, so a bucket missing beside a present count means the threshold is
    not a bucket boundary. Read as zero good events it would page on a healthy service;
    absent, it makes the SLO ``no_data`` and fires ``SLONoData`` instead.
    """
    if isinstance(sli, EventsSLI):
        total = f"sum({render_window(sli.total, window)})"
        if sli.bad is not None:
            errors = f"(sum({render_window(sli.bad, window)}) or vector(0))"
        else:
            assert sli.good is not None
            errors = f"{total} - (sum({render_window(sli.good, window)}) or vector(0))"
        return errors, total
    if isinstance(sli, LatencySLI):
        count = f"{sli.metric}_count{_matchers(sli.selector)}"
        bucket = f"{sli.metric}_bucket{_matchers(sli.selector, le_matcher(sli.threshold))}"
        total = f"sum(increase({count}[{window}]))"
        errors = f"{total} - sum(increase({bucket}[{window}]))"
        return errors, total
    raise TypeError(f"unknown SLI type: {type(sli).__name__}")


def slice_judgement(errors: str, total: str, timeslices: Timeslices) -> str:
    """PromQL judging the slice whose error and event counts are ``errors`` and ``total``:
    1 when its error ratio exceeds what the slice target allows, 0 when not (a
    ``mean-ratio`` SLO: the error ratio itself), absent (not judged) without events. The
    rules record it, the evaluator and the backtest query it, so all three judge a slice
    alike; a window's bad share (or mean error ratio) is then the sum of its judgements
    over their count."""
    if timeslices.mean_ratio:
        return f"{errors} / {total} and {total} > 0"
    allowed = f"{timeslices.allowed_error_ratio:.12g}"
    return f"{errors} / {total} > bool {allowed} and {total} > 0"


def slice_judgement_of(sli: SLI, timeslices: Timeslices, window: str) -> str:
    """``slice_judgement`` straight from the SLI's counters over the slice (``window``:
    the slice length as a Prometheus duration, scaled or not)."""
    errors, total = sli_exprs(sli, window)
    return slice_judgement(f"({errors})", f"({total})", timeslices)


def bucket_query(sli: LatencySLI) -> str:
    """PromQL with one series per ``le`` bound the SLI's histogram has: a threshold that
    is not among them has no bucket to count (``slo validate --prometheus`` checks this)."""
    selector = f"{{{sli.selector}}}" if sli.selector else ""
    return f"count by (le) ({sli.metric}_bucket{selector})"
