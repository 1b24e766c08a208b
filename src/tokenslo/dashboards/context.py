"""What dashboard templates see: SLO facts and the PromQL derived from them. Pure.

Every SLI query comes from ``tokenslo.core.promql.sli_exprs`` and every name of
a recorded series from ``tokenslo.rules.conventions``, so a panel means exactly
what the evaluator and the alert rules mean. Templates only choose panels,
titles, units and layout; queries on raw lab metrics that are not SLIs
(quantiles, breakdowns by label) are written in the templates themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenslo.core.burnrate import factor_of, policy_for, threshold_of
from tokenslo.core.durations import format_duration, parse_duration
from tokenslo.core.model import SLI, SLO, EventsSLI, LatencySLI, budget_of
from tokenslo.core.promql import sli_exprs
from tokenslo.rules import conventions as c
from tokenslo.rules.generate import BASE_WINDOW

# Grafana's own variables; the live-query test substitutes them.
RATE_INTERVAL = "$__rate_interval"
DATASOURCE_VAR = "datasource"
SLO_VAR = "slo"
# The client app a per-client panel shows (multi-value, "All" = any client_id): the bounded
# client_id label of the IdP's and the gateway's counters.
CLIENT_VAR = "client"
CLIENT_METRIC = "idp_token_requests_total"
GUIDE_PERIOD = "30d"  # period of the guide's starting targets when no SLO measures a role


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(slo: str | None = None) -> str:
    """Matchers for recorded series: one SLO by name, or ``$slo`` for the detail view."""
    if slo is None:
        return ""
    return "{" + f"{c.SLO_LABEL}={quote(slo)}" + "}"


def sli_query(sli: SLI, window: str) -> str:
    """Good-event ratio of ``sli`` over ``window``, via the one SLI builder."""
    errors, total = sli_exprs(sli, window)
    return f"1 - ({errors}) / ({total})"


def burn_query(window: str, sel: str) -> str:
    """Burn rate over a recorded window: error ratio ÷ error budget (1 − objective)."""
    ratio = c.error_ratio_record(window) + sel
    return f"{ratio} / on({c.SLO_LABEL}, {c.SERVICE_LABEL}) (1 - {c.OBJECTIVE_RECORD}{sel})"


@dataclass(frozen=True)
class BurnView:
    severity: str
    long_window: str
    short_window: str
    factor: float  # nominal (a traffic-aware SLO's at steady traffic)
    threshold: float  # error ratio (static; a traffic-aware one moves, see moving_thresholds)
    budget_fraction: float = 0.0  # c: share of the period's budget the condition allows
    traffic_aware: bool = False


@dataclass(frozen=True)
class SLOView:
    """One SLO as templates use it."""

    name: str
    service: str
    description: str
    objective: float  # percent
    target: float  # ratio
    budget: float  # ratio
    period: str  # nominal duration, e.g. 30d
    sli: SLI
    burns: tuple[BurnView, ...]
    calendar: str = ""  # "month (Europe/Paris)" for a calendar-aligned budget, else ""

    @property
    def sel(self) -> str:
        return selector(self.name)

    @property
    def calendar_budget(self) -> str:
        """Budget remaining since the calendar period began, as ``slo status`` reports it
        (the SLO's calendar rule group records it)."""
        return f"{c.CALENDAR_BUDGET_REMAINING_RECORD}{self.sel}"

    def sli_over(self, window: str = RATE_INTERVAL) -> str:
        return sli_query(self.sli, window)

    @property
    def period_sli(self) -> str:
        """SLI over the SLO period, from the recorded ratio (cheap: no 30d raw scan)."""
        return f"1 - {c.error_ratio_record(self.period)}{self.sel}"

    @property
    def latency_threshold(self) -> float | None:
        return self.sli.threshold if isinstance(self.sli, LatencySLI) else None


def slo_view(slo: SLO) -> SLOView:
    burns = tuple(
        BurnView(
            severity=w.severity,
            long_window=format_duration(w.long_window),
            short_window=format_duration(w.short_window),
            factor=round(factor_of(slo, w), 6),
            threshold=threshold_of(slo, w),
            budget_fraction=w.budget_fraction,
            traffic_aware=slo.alerting.traffic_aware,
        )
        for w in policy_for(slo)
    )
    return SLOView(
        name=slo.name,
        service=slo.service,
        description=" ".join(slo.description.split()),
        objective=slo.objective,
        target=round(slo.target, 12),
        budget=slo.error_budget,
        period=format_duration(slo.window),
        sli=slo.sli,
        burns=burns,
        calendar="" if slo.calendar is None else f"{slo.calendar.period} ({slo.calendar.timezone})",
    )


# --- the token-infrastructure views' SLIs ----------------------------------------------------


@dataclass(frozen=True)
class Role:
    """An SLI the access-token guide's dashboards show, found among the user's SLOs by
    the metric it measures; the guide's starting target (and an SLI on the lab metric
    contract) stands in when no SLO measures it."""

    title: str
    metric: str
    default_objective: float
    fallback: SLI
    match: Callable[[SLO], bool] = lambda slo: True


def _events(bad: str, total: str) -> EventsSLI:
    return EventsSLI(bad=bad, total=total)


ROLES: dict[str, Role] = {
    "issuance": Role(
        "Token issuance success",
        "idp_token_requests_total",
        99.9,
        _events(
            'sum(rate(idp_token_requests_total{code=~"5.."}[{{window}}]))',
            "sum(rate(idp_token_requests_total[{{window}}]))",
        ),
        match=lambda s: "refresh_token" not in _text(s.sli),
    ),
    "issuance_latency": Role(
        "Token issuance latency",
        "idp_token_request_duration_seconds",
        95.0,
        LatencySLI("idp_token_request_duration_seconds", 0.3),
    ),
    "refresh": Role(
        "Token refresh success",
        "idp_token_requests_total",
        99.9,
        _events(
            'sum(rate(idp_token_requests_total{grant_type="refresh_token", code=~"5.."}'
            "[{{window}}]))",
            'sum(rate(idp_token_requests_total{grant_type="refresh_token"}[{{window}}]))',
        ),
        match=lambda s: "refresh_token" in _text(s.sli),
    ),
    "validation": Role(
        "Token validation success",
        "gateway_token_validations_total",
        99.95,
        _events(
            'sum(rate(gateway_token_validations_total{result=~"unknown_kid|not_yet_valid|'
            'expired"}[{{window}}]))',
            'sum(rate(gateway_token_validations_total{result=~"valid|unknown_kid|'
            'not_yet_valid|expired"}[{{window}}]))',
        ),
    ),
    "validation_latency": Role(
        "Token validation latency",
        "gateway_token_validation_duration_seconds",
        95.0,
        LatencySLI("gateway_token_validation_duration_seconds", 0.05),
    ),
    "introspection": Role(
        "Introspection availability",
        "idp_introspection_requests_total",
        99.9,
        _events(
            'sum(rate(idp_introspection_requests_total{code=~"5.."}[{{window}}]))',
            "sum(rate(idp_introspection_requests_total[{{window}}]))",
        ),
    ),
    "introspection_latency": Role(
        "Introspection latency",
        "idp_introspection_request_duration_seconds",
        95.0,
        LatencySLI("idp_introspection_request_duration_seconds", 0.1),
    ),
    "jwks": Role(
        "JWKS availability",
        "idp_jwks_requests_total",
        99.9,
        _events(
            'sum(rate(idp_jwks_requests_total{code=~"5.."}[{{window}}]))',
            "sum(rate(idp_jwks_requests_total[{{window}}]))",
        ),
    ),
}


def _text(sli: SLI) -> str:
    if isinstance(sli, LatencySLI):
        return f"{sli.metric} {sli.selector}"
    return " ".join(p for p in (sli.total, sli.good, sli.bad) if p)


def _measures(slo: SLO, role: Role) -> bool:
    sli = slo.sli
    same_kind = isinstance(sli, type(role.fallback))
    hit = sli.metric == role.metric if isinstance(sli, LatencySLI) else role.metric in _text(sli)
    return same_kind and hit and role.match(slo)


@dataclass(frozen=True)
class RoleView:
    title: str
    slo: str | None  # name of the SLO found for it, None = guide default
    objective: float
    target: float
    sli: SLI
    period: str

    def sli_over(self, window: str = RATE_INTERVAL) -> str:
        return sli_query(self.sli, window)

    @property
    def period_sli(self) -> str:
        """SLI over the period: the recorded ratio when an SLO records it, else raw."""
        if self.slo is None:
            return self.sli_over(self.period)
        return f"1 - {c.error_ratio_record(self.period)}{selector(self.slo)}"

    @property
    def latency_threshold(self) -> float | None:
        return self.sli.threshold if isinstance(self.sli, LatencySLI) else None


def role_view(role: Role, slos: Sequence[SLO]) -> RoleView:
    found = next((s for s in slos if _measures(s, role)), None)
    if found is None:
        objective, sli, name, period = role.default_objective, role.fallback, None, GUIDE_PERIOD
    else:
        objective, sli, name = found.objective, found.sli, found.name
        period = format_duration(found.window)
    return RoleView(role.title, name, objective, round(1 - budget_of(objective), 12), sli, period)


# --- the whole context -----------------------------------------------------------------------


@dataclass(frozen=True)
class DashContext:
    slos: tuple[SLOView, ...]
    roles: dict[str, RoleView]
    sources: tuple[str, ...]

    @property
    def services(self) -> list[tuple[str, list[SLOView]]]:
        by: dict[str, list[SLOView]] = {}
        for view in self.slos:
            by.setdefault(view.service, []).append(view)
        return list(by.items())

    @property
    def windows(self) -> list[str]:
        """Every recorded window, shortest first (5m … period)."""
        seconds = {BASE_WINDOW}
        for view in self.slos:
            for b in view.burns:
                seconds.update((_seconds(b.long_window), _seconds(b.short_window)))
            seconds.add(_seconds(view.period))
        return [format_duration(s) for s in sorted(seconds)]

    @property
    def long_windows(self) -> list[str]:
        seen = {_seconds(b.long_window) for v in self.slos for b in v.burns}
        return [format_duration(s) for s in sorted(seen)]

    @property
    def periods(self) -> list[str]:
        return [format_duration(s) for s in sorted({_seconds(v.period) for v in self.slos})]

    def page_factors(self) -> list[float]:
        """Distinct burn factors of page conditions, highest first (threshold lines)."""
        found = {b.factor for v in self.slos for b in v.burns if b.severity == "page"}
        return sorted(found, reverse=True)

    def burn_steps(self) -> dict:
        """Thresholds at the static SLOs' page burn factors: orange at the slow page, red
        at the fast (a traffic-aware SLO's page lines move: ``moving_thresholds``)."""
        found = {b.factor for v in self.slos for b in v.burns if b.severity == "page"}
        factors = sorted(found - self._moving_factors())
        colors = ["orange"] * (len(factors) - 1) + ["red"] if factors else []
        return steps(("green", None), *zip(colors, factors, strict=True))

    def _moving_factors(self) -> set[float]:
        """Page factors only traffic-aware SLOs use (no static SLO draws them)."""
        pages = [b for v in self.slos for b in v.burns if b.severity == "page"]
        static = {b.factor for b in pages if not b.traffic_aware}
        return {b.factor for b in pages if b.traffic_aware} - static

    def factor_for(self, long_window: str) -> float | None:
        """The burn factor alerting on ``long_window`` when all SLOs agree on it."""
        found = {b.factor for v in self.slos for b in v.burns if b.long_window == long_window}
        return found.pop() if len(found) == 1 else None

    def static_on(self, long_window: str) -> bool:
        """Whether a static SLO alerts on ``long_window`` (its constant line applies)."""
        return any(
            b.long_window == long_window and not b.traffic_aware for v in self.slos for b in v.burns
        )

    def moving_targets(self, long_window: str = "", sel: str = "") -> list[dict]:
        """``moving_thresholds`` as panel targets."""
        return [target(q, legend) for q, legend in self.moving_thresholds(sel, long_window)]

    def moving_thresholds(self, sel: str = "", long_window: str = "") -> list[tuple[str, str]]:
        """``(query, legend)`` of every traffic-aware page condition's threshold in burn-rate
        units (optionally only on ``long_window``): the recorded traffic ratio N_period /
        N_long × c, the line its alert compares with, moving with the traffic. One query
        per distinct condition, restricted to the SLOs that have it (``sel`` narrows more)."""
        groups: dict[tuple[str, str, float], list[str]] = {}
        for view in self.slos:
            for b in view.burns:
                wanted = not long_window or b.long_window == long_window
                if b.traffic_aware and b.severity == "page" and wanted:
                    key = (b.long_window, b.short_window, b.budget_fraction)
                    groups.setdefault(key, []).append(view.name)
        out = []
        for (long_, short, share), names in sorted(groups.items()):
            matcher = f"{c.SLO_LABEL}=~{quote('|'.join(_regex_literal(n) for n in names))}"
            labels = sel[:-1] + ", " + matcher + "}" if sel else "{" + matcher + "}"
            query = f"{c.traffic_ratio_record(long_)}{labels} * {share:.12g}"
            out.append((query, f"{{{{slo}}}} page threshold {long_}/{short} (traffic-aware)"))
        return out

    def period_sli(self, sel: str) -> str:
        """SLI over each SLO's own period, whatever it is (one ``or`` term per period)."""
        return " or ".join(f"(1 - {c.error_ratio_record(p)}{sel})" for p in self.periods)

    def burn(self, window: str, sel: str = "") -> str:
        return burn_query(window, sel)

    def ratio(self, window: str, sel: str = "") -> str:
        return c.error_ratio_record(window) + sel


def _regex_literal(text: str) -> str:
    """``text`` matched literally inside a PromQL (RE2) regex."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def _seconds(duration: str) -> float:
    return parse_duration(duration)


def build_context(slos: Sequence[SLO]) -> DashContext:
    return DashContext(
        slos=tuple(slo_view(s) for s in slos),
        roles={key: role_view(role, slos) for key, role in ROLES.items()},
        sources=tuple(sorted({s.source.file for s in slos if s.source})),
    )


def template_globals() -> dict[str, object]:
    """Names (conventions, variable names) every dashboard template may use."""
    return {
        "rec": {
            "objective": c.OBJECTIVE_RECORD,
            "budget_remaining": c.BUDGET_REMAINING_RECORD,
            "errors": c.errors_record,
            "events": c.events_record,
            "ratio": c.error_ratio_record,
            "burn_alert": c.BURN_ALERT,
            "no_data_alert": c.NO_DATA_ALERT,
        },
        "RATE": RATE_INTERVAL,
        "SLO_VAR": SLO_VAR,
        "CLIENT_VAR": CLIENT_VAR,
        "CLIENT_METRIC": CLIENT_METRIC,
        "client_sel": f'client_id=~"${CLIENT_VAR}"',
        "slo_sel": "{" + f'{c.SLO_LABEL}="${SLO_VAR}"' + "}",
        "quote": quote,
        "target": target,
        "steps": steps,
        "quantiles": quantiles,
    }


def quantiles(
    metric: str, qs: Sequence[float] = (0.95, 0.99), by: str = "", window: str = RATE_INTERVAL
) -> list[dict]:
    """p-quantile targets of a histogram (``metric`` without ``_bucket``), one per ``q``."""
    labels = ", ".join(["le", *([by] if by else [])])
    return [
        target(
            f"histogram_quantile({q:g}, sum by ({labels}) (rate({metric}_bucket[{window}])))",
            f"p{q * 100:g}" + (f" · {{{{{by}}}}}" if by else ""),
        )
        for q in qs
    ]


def target(
    expr: str,
    legend: str = "__auto",
    *,
    instant: bool = False,
    table: bool = False,
    ref: str | None = None,
) -> dict:
    """A Prometheus query of a panel (data source, and ``refId`` unless given, are added
    when the dashboard is finalized)."""
    head = {"refId": ref} if ref else {}
    return {
        **head,
        "expr": expr,
        "legendFormat": legend,
        "range": not instant,
        "instant": instant,
        "format": "table" if table else "time_series",
        "editorMode": "code",
    }


def steps(*pairs: tuple[str, float | None]) -> dict:
    """Absolute thresholds: ``steps(("red", None), ("green", 0.999))``; the first step's
    value is always null (everything below the next step)."""
    out = [{"color": color, "value": value} for color, value in pairs]
    if out:
        out[0]["value"] = None
    return {"mode": "absolute", "steps": out}
