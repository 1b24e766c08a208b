"""SLO fixture constructors shared by the engine tests."""

from __future__ import annotations

from tokenslo.core.model import SLO, Alerting, BurnWindow, EventsSLI, LatencySLI

DAY = 86400.0


def events_slo(name: str, objective: float = 99.9, window: float = 30 * DAY, **kw) -> SLO:
    job = kw.pop("job", name)
    sli = EventsSLI(
        total=f'rate(demo_requests_total{{job="{job}"}}[{{{{window}}}}])',
        bad=f'rate(demo_requests_total{{job="{job}",code=~"5.."}}[{{{{window}}}}])',
    )
    return SLO(name=name, service="demo", objective=objective, window=window, sli=sli, **kw)


def good_events_slo(name: str, objective: float = 99.0, window: float = 30 * DAY, **kw) -> SLO:
    sli = EventsSLI(
        total=f'increase(demo_requests_total{{job="{name}"}}[{{{{window}}}}])',
        good=f'increase(demo_requests_total{{job="{name}",code="200"}}[{{{{window}}}}])',
    )
    return SLO(name=name, service="demo", objective=objective, window=window, sli=sli, **kw)


def latency_slo(name: str, objective: float = 99.0, window: float = 30 * DAY, **kw) -> SLO:
    sli = LatencySLI(metric="demo_duration_seconds", threshold=0.25, selector=f'job="{name}"')
    return SLO(name=name, service="demo", objective=objective, window=window, sli=sli, **kw)


def policy(*windows: tuple[str, float, float, float, float]) -> Alerting:
    """Alerting with explicit (severity, budget_fraction, long, short, for) conditions."""
    return Alerting(
        policy=tuple(
            BurnWindow(severity=s, budget_fraction=b, long_window=lw, short_window=sw, for_=f)  # type: ignore[arg-type]
            for s, b, lw, sw, f in windows
        )
    )
