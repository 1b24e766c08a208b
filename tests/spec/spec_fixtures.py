"""SLO models shared by the spec tests (v1 writer and OpenSLO round trips)."""

from __future__ import annotations

from tokenslo.core.model import SLO, Alerting, BurnWindow, EventsSLI, LatencySLI

# Every optional field set somewhere, awkward strings, both SLI kinds, both numerators.
RICH = [
    SLO(
        name="a",
        service="idp",
        objective=99.95,
        window=28 * 86400,
        sli=EventsSLI(
            total="sum(rate(x[{{window}}]))", good='sum(rate(x{code!~"5.."}[{{window}}]))'
        ),
        description="quotes ' and \" and: colons",
        labels={"team": "identity", "tier": "1"},
        alerting=Alerting(
            page=True,
            ticket=False,
            labels={"severity_override": "x"},
            annotations={"runbook_url": "https://r.example/a#b"},
            policy=(
                BurnWindow("page", 0.05, 6 * 3600, 1800, 360),
                BurnWindow("ticket", 0.1, 3 * 86400, 6 * 3600, 90),
            ),
        ),
        loadtest=("token:client_credentials", "jwks"),
        loadtest_min_requests=5000,
    ),
    SLO(
        name="b",
        service="gateway",
        objective=95,
        window=7 * 86400,
        sli=LatencySLI(metric="h_seconds", threshold=0.05),
    ),
    SLO(
        name="c",
        service="idp",
        objective=90.5,
        window=3600,
        sli=EventsSLI(total="sum(rate(y[{{window}}]))", bad="sum(rate(y_err[{{window}}]))"),
    ),
]
