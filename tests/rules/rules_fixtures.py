"""Fixture SLO constructors (after Pyrra's ``objectiveHTTPRatio()``): small, explicit
SLOs the rule tests and the fixture goldens are built from."""

from __future__ import annotations

from tokenslo.core.model import (
    SLO,
    TRAFFIC_AWARE,
    Alerting,
    Calendar,
    EventsSLI,
    LatencySLI,
    Timeslices,
)

DAY = 86400.0
RUNBOOK = "https://runbooks.example/tokenslo/idp#token-issuance-availability"


def events_bad(objective: float = 99.9, window_days: int = 30, **kw) -> SLO:
    """Token issuance availability: 5xx responses are bad."""
    return SLO(
        name=kw.pop("name", "token-issuance-availability"),
        service=kw.pop("service", "idp"),
        objective=objective,
        window=window_days * DAY,
        sli=EventsSLI(
            total="increase(idp_token_requests_total[{{window}}])",
            bad='increase(idp_token_requests_total{code=~"5.."}[{{window}}])',
        ),
        labels=kw.pop("labels", {"team": "identity"}),
        alerting=kw.pop("alerting", Alerting(annotations={"runbook_url": RUNBOOK})),
        **kw,
    )


def events_good(objective: float = 99.95, window_days: int = 28, **kw) -> SLO:
    """Gateway validations: only ``result="valid"`` is good."""
    return SLO(
        name=kw.pop("name", "token-validation-success"),
        service=kw.pop("service", "gateway"),
        objective=objective,
        window=window_days * DAY,
        sli=EventsSLI(
            total="increase(gateway_token_validations_total[{{window}}])",
            good='increase(gateway_token_validations_total{result="valid"}[{{window}}])',
        ),
        alerting=kw.pop("alerting", Alerting(labels={"team": "edge"})),
        **kw,
    )


def latency(objective: float = 99.0, window_days: int = 28, **kw) -> SLO:
    """client_credentials tokens issued within 250 ms."""
    return SLO(
        name=kw.pop("name", "token-issuance-latency"),
        service=kw.pop("service", "idp"),
        objective=objective,
        window=window_days * DAY,
        sli=LatencySLI(
            metric="idp_token_request_duration_seconds",
            threshold=0.25,
            selector='grant_type="client_credentials"',
        ),
        **kw,
    )


def traffic_aware(**kw) -> SLO:
    """``events_bad`` with traffic-aware burn rates (thresholds scale with the traffic)."""
    alerting = Alerting(burn_rate=TRAFFIC_AWARE, annotations={"runbook_url": RUNBOOK})
    return events_bad(
        name=kw.pop("name", "token-issuance-traffic-aware"),
        alerting=kw.pop("alerting", alerting),
        **kw,
    )


def timeslices(slice_seconds: float = 60.0, slice_target: float = 95.0, **kw) -> SLO:
    """``events_bad`` budgeted by time slices: a minute is good when at least 95% of its
    requests succeed, and 99.9% of the minutes must be good."""
    return events_bad(
        name=kw.pop("name", "token-issuance-timeslices"),
        timeslices=Timeslices(window=slice_seconds, target=slice_target),
        **kw,
    )


def calendars() -> list[SLO]:
    """Calendar SLOs: a month in UTC (1h counts at a 1h step), a day in Asia/Kolkata
    (UTC+5:30, 5m steps) and a week in Etc/GMT-3 (UTC+3)."""
    return [
        events_bad(name="issuance-monthly", calendar=Calendar("month")),
        latency(name="latency-daily-kolkata", calendar=Calendar("day", "Asia/Kolkata")),
        events_good(name="validation-weekly", calendar=Calendar("week", "Etc/GMT-3")),
    ]


def mean_ratio(slice_seconds: float = 60.0, **kw) -> SLO:
    """``events_bad`` on the mean of its 1m slices' ratios (OpenSLO RatioTimeslices)."""
    return events_bad(
        name=kw.pop("name", "token-issuance-mean-ratio"),
        timeslices=Timeslices(window=slice_seconds, method="mean-ratio"),
        **kw,
    )


def all_fixtures() -> list[SLO]:
    return [events_bad(), events_good(), latency()]
