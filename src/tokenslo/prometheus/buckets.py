"""Ask a live Prometheus which ``le`` buckets a latency SLI's histogram has.

The I/O half of ``slo validate --prometheus``: the spec's pure check
(``tokenslo.spec.thresholds``) compares each threshold with what this returns, so
talking to Prometheus stays at the edge, beside the client.
"""

from __future__ import annotations

import requests

from tokenslo.core.model import LatencySLI
from tokenslo.core.promql import bucket_query
from tokenslo.errors import UnavailableError

TIMEOUT = 10.0


def fetch_buckets(url: str, sli: LatencySLI, timeout: float = TIMEOUT) -> list[float]:
    """The distinct ``le`` bounds of the SLI's histogram, ascending (``+Inf`` last)."""
    endpoint = url.rstrip("/") + "/api/v1/query"
    try:
        response = requests.get(endpoint, params={"query": bucket_query(sli)}, timeout=timeout)
    except requests.RequestException as exc:
        raise UnavailableError(
            f"Prometheus at {url} is unreachable: {type(exc).__name__}"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or body.get("status") != "success":
        detail = body.get("error") or f"HTTP {response.status_code}"
        raise UnavailableError(f"Prometheus at {url} answered the bucket query with: {detail}")
    bounds = {
        float(item["metric"]["le"]) for item in body["data"]["result"] if "le" in item["metric"]
    }
    return sorted(bounds)
