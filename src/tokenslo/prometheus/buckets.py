"""Ask a live Prometheus which ``le`` buckets a latency SLI's histogram has.

The I/O half of ``slo validate --prometheus``: the spec's pure check
(``tokenslo.spec.thresholds``) compares each threshold with what this returns, so
talking to Prometheus stays at the edge, beside the client.
"""

from __future__ import annotations

import time

from tokenslo.core.model import LatencySLI
from tokenslo.core.promql import bucket_query
from tokenslo.errors import TokensloError, UnavailableError
from tokenslo.prometheus.client import PromClient

TIMEOUT = 10.0


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
