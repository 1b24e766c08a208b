"""Check latency thresholds against the ``le`` buckets a real Prometheus has.

A latency SLI counts the bucket at exactly ``threshold``; if the histogram has
no such bucket the SLO has no data (exit 3, ``SLONoData``) instead of an SLI, so
``slo validate --prometheus`` catches it before the rules ship; without
``--prometheus``, ``validate`` says the thresholds were not checked.
"""

from __future__ import annotations

import math
import time

from tokenslo.errors import TokensloError, UnavailableError
from tokenslo.prometheus.client import PromClient
from tokenslo.spec.checks import Finding
from tokenslo.spec.loader import LoadResult
from tokenslo.spec.model import LatencySLI
from tokenslo.spec.yamlpos import field_path

TIMEOUT = 10.0


def bucket_query(sli: LatencySLI) -> str:
    selector = f"{{{sli.selector}}}" if sli.selector else ""
    return f"count by (le) ({sli.metric}_bucket{selector})"


def fetch_buckets(url: str, sli: LatencySLI, timeout: float = TIMEOUT) -> list[float]:
    """The distinct ``le`` bounds of the SLI's histogram, ascending (``+Inf`` last)."""
    client: PromClient | None = None
    try:
        client = PromClient(url, timeout=timeout)
        result = client.query(bucket_query(sli), time.time())
    except TokensloError as exc:  # exit 3 whatever went wrong, as `validate` always did
        if client is None:  # not even an http(s) URL: nothing to connect to
            raise UnavailableError(f"Prometheus at {url} is unreachable: {exc.message}") from None
        if client.transport_error is not None:
            reason = type(client.transport_error).__name__
            raise UnavailableError(f"Prometheus at {url} is unreachable: {reason}") from None
        raise UnavailableError(
            f"Prometheus at {url} answered the bucket query with: {exc.message}"
        ) from None
    finally:
        if client is not None:
            client.close()
    bounds = {float(item["metric"]["le"]) for item in result if "le" in item["metric"]}
    return sorted(bounds)


def check_latency_buckets(result: LoadResult, url: str) -> None:
    """Raise InputError at ``sli.latency.threshold`` when it is not one of the buckets."""
    for slo in result.slos:
        if not isinstance(slo.sli, LatencySLI):
            continue
        bounds = fetch_buckets(url, slo.sli)
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
