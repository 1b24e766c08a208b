"""Latency thresholds against the ``le`` buckets their histograms really have.

A latency SLI counts the bucket at exactly ``threshold``; if the histogram has
no such bucket the SLO has no data (exit 3, ``SLONoData``) instead of an SLI, so
``slo validate --prometheus`` catches it before the rules ship; without
``--prometheus``, ``validate`` says the thresholds were not checked. Asking
Prometheus is I/O (``tokenslo.prometheus.buckets``): the command passes that
lookup in, so this module stays pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tokenslo.core.model import LatencySLI
from tokenslo.core.promql import bucket_query
from tokenslo.errors import UnavailableError
from tokenslo.spec.checks import Finding
from tokenslo.spec.loader import LoadResult
from tokenslo.spec.yamlpos import field_path

BucketFetcher = Callable[[LatencySLI], list[float]]
"""The distinct ``le`` bounds of an SLI's histogram, ascending (``+Inf`` last)."""


def check_latency_buckets(result: LoadResult, url: str, fetch: BucketFetcher) -> None:
    """Raise InputError at ``sli.latency.threshold`` when it is not one of the buckets
    ``fetch`` finds for the SLI in the Prometheus at ``url`` (named in the messages)."""
    for slo in result.slos:
        if not isinstance(slo.sli, LatencySLI):
            continue
        bounds = fetch(slo.sli)
        if not bounds:
            raise UnavailableError(
                f"Prometheus at {url} has no series for {bucket_query(slo.sli)} "
                f"(SLO {slo.name!r}); is the target scraped?"
            )
        if not any(math.isclose(b, slo.sli.threshold, rel_tol=1e-9) for b in bounds):
            shown = ", ".join("+Inf" if math.isinf(b) else f"{b:g}" for b in bounds)
            raise result.error(
                slo,
                f"threshold {slo.sli.threshold:g}s is not a bucket of {slo.sli.metric} "
                f"(SLO {slo.name!r}); available le buckets: {shown}",
                "sli",
                "latency",
                "threshold",
            )


def unchecked_thresholds(result: LoadResult) -> list[Finding]:
    """One note per latency SLI: without ``--prometheus`` its threshold cannot be checked
    against the histogram's buckets. Notes, not warnings: ``--strict`` does not fail on them,
    since no file can satisfy them offline."""
    notes = []
    for slo in result.slos:
        if isinstance(slo.sli, LatencySLI):
            doc, index = result.places[slo.name]
            path = ("slos", index, "sli", "latency", "threshold")
            line, column = doc.where(path)
            message = (
                f"threshold {slo.sli.threshold:g}s must be an le bucket of {slo.sli.metric}; "
                "not checked without --prometheus (a missing bucket makes the SLO no_data)"
            )
            notes.append(Finding(doc.file, line, column, field_path(path), message))
    return notes
