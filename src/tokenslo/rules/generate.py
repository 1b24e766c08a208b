"""SLOs → Prometheus recording and multi-window burn-rate alert rules. Pure: no I/O.

Generation is a few ordered steps, each a small function (README.md explains why
each rule looks the way it does):

1. validate   – names unique, reserved labels left alone, time scale positive;
2. SLI rules  – error and event counts per window, and their ratio (a timeslices SLO:
                bad and judged slices per window, from its slice records);
3. metadata   – objective and remaining error budget over the SLO period;
4. alerts     – one ``SLOErrorBudgetBurn`` per policy window pair, one ``SLONoData``;
5. calendar   – calendar SLOs: a second group with the period-to-date counts and budget
                (``tokenslo.rules.calendar``).

All PromQL for the SLI itself comes from ``tokenslo.core.promql.sli_exprs``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence

import yaml

from tokenslo.core.burnrate import factor_of, policy_for, threshold_of
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, BurnWindow
from tokenslo.core.promql import sli_exprs, slice_judgement
from tokenslo.core.timescale import Scale, check_time_scale
from tokenslo.core.windows import BASE_INTERVAL, BASE_WINDOW, MIN_INTERVAL, is_derived
from tokenslo.errors import InputError
from tokenslo.rules import calendar as cal
from tokenslo.rules import conventions as c

NO_DATA_FOR = 600.0  # how long the SLI may be absent before SLONoData fires
FORMATS = ("prometheus", "operator")


# --- 1. validate (the time scale: tokenslo.core.timescale.check_time_scale) ----------------


def validate(slos: Sequence[SLO]) -> None:
    """Catch what would make Prometheus reject the file or mislabel an alert."""
    if not slos:
        raise InputError("no SLOs to generate rules for")
    seen: dict[str, SLO] = {}
    for slo in slos:
        where = _where(slo)
        if slo.name in seen:
            raise InputError(
                f"SLO name {slo.name!r} is used twice (rule groups are named after it)",
                field="name",
                **where,
            )
        seen[slo.name] = slo
        if slo.timeslices is not None and slo.alerting.traffic_aware:
            raise InputError(
                f"SLO {slo.name!r}: traffic-aware burn rates count events; a timeslices SLO"
                " budgets slices (use static burn rates)",
                field="alerting.burn_rate",
                **where,
            )
        for section, labels in (("labels", slo.labels), ("alerting.labels", slo.alerting.labels)):
            clash = sorted(c.RESERVED_LABELS & set(labels))
            if clash:
                raise InputError(
                    f"label {clash[0]!r} is set by the rule generator; choose another name",
                    field=f"{section}.{clash[0]}",
                    **where,
                )


def _where(slo: SLO) -> dict:
    if slo.source is None:
        return {}
    return {"file": slo.source.file, "line": slo.source.line}


# --- 2. SLI rules ---------------------------------------------------------------------------


def windows_of(slo: SLO) -> tuple[list[float], list[float]]:
    """Distinct windows (seconds) the alerts and metadata need, split into
    (computed from raw counters, derived from the 5m counts)."""
    wanted = {BASE_WINDOW, slo.window}
    calendar = slo.calendar
    if calendar and calendar.period in cal.ROLLUP_PERIODS and slo.timeslices is None:
        wanted.add(cal.ROLLUP_WINDOW)  # the calendar group sums these 1h counts
    for w in policy_for(slo):
        wanted.update((w.long_window, w.short_window))
    ordered = sorted(wanted)
    return (
        [w for w in ordered if not is_derived(w)],
        [w for w in ordered if is_derived(w)],
    )


def series_labels(slo: SLO) -> dict[str, str]:
    """Labels on every recorded series of ``slo`` (and hence on its alerts)."""
    return {c.SLO_LABEL: slo.name, c.SERVICE_LABEL: slo.service, **slo.labels}


def selector(slo: SLO) -> str:
    return "{" + f"{c.SLO_LABEL}={_quote(slo.name)}, {c.SERVICE_LABEL}={_quote(slo.service)}" + "}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _record(name: str, expr: str, labels: dict[str, str]) -> dict:
    return {"record": name, "expr": expr, "labels": dict(labels)}


def exact_window_rules(slo: SLO, window: float, scale: Scale) -> list[dict]:
    """errors_w and events_w straight from the counters, then their ratio."""
    errors, total = sli_exprs(slo.sli, scale.duration(window))
    return counted_window_rules(slo, format_duration(window), errors, total)


def counted_window_rules(slo: SLO, nominal: str, errors: str, total: str) -> list[dict]:
    """Record ``errors`` and ``total`` as the window's counts, then their ratio."""
    sel, labels = selector(slo), series_labels(slo)
    return [
        _record(c.errors_record(nominal), errors, labels),
        _record(c.events_record(nominal), total, labels),
        _record(
            c.error_ratio_record(nominal),
            f"{c.errors_record(nominal)}{sel} / {c.events_record(nominal)}{sel}",
            labels,
        ),
    ]


def summed(record: str, slo: SLO, window: float, scale: Scale) -> str:
    """``record`` (a 5m count) summed over ``window``: over-counts by the overlap of
    consecutive 5m samples, so only ratios of two such sums are meaningful."""
    return (
        f"sum_over_time({record.format(window=format_duration(BASE_WINDOW))}"
        f"{selector(slo)}[{scale.duration(window)}])"
    )


def derived_window_rule(slo: SLO, window: float, scale: Scale) -> dict:
    """Ratio of the summed 5m counts: the overlap of consecutive 5m samples
    over-counts errors and events by the same factor, which cancels."""
    expr = (
        f"{summed(c.ERRORS_RECORD, slo, window, scale)}"
        f" / {summed(c.EVENTS_RECORD, slo, window, scale)}"
    )
    return _record(c.error_ratio_record(format_duration(window)), expr, series_labels(slo))


def traffic_ratio_rules(slo: SLO, scale: Scale) -> list[dict]:
    """Traffic-aware SLOs: events in the period / events in each long window, both
    summed from the 5m counts so the overlap factor cancels as in derived ratios."""
    if not slo.alerting.traffic_aware:
        return []
    period = summed(c.EVENTS_RECORD, slo, slo.window, scale)
    return [
        _record(
            c.traffic_ratio_record(format_duration(long_)),
            f"{period} / {summed(c.EVENTS_RECORD, slo, long_, scale)}",
            series_labels(slo),
        )
        for long_ in sorted({w.long_window for w in policy_for(slo)})
    ]


def slice_rules(slo: SLO, scale: Scale) -> list[dict]:
    """Timeslices SLOs: the last slice's raw counts, then whether it is bad: 1 when its
    error ratio exceeds what the slice target allows, 0 when not (mean-ratio SLOs: its
    error ratio), absent (not judged) when it saw no events. Recorded at every
    evaluation, so slices slide by one interval."""
    assert slo.timeslices is not None
    nominal = format_duration(slo.timeslices.window)
    errors, total = sli_exprs(slo.sli, scale.duration(slo.timeslices.window))
    sel, labels = selector(slo), series_labels(slo)
    errors_, events = c.slice_errors_record(nominal) + sel, c.slice_events_record(nominal) + sel
    judged = c.slice_judgement_record(nominal, slo.timeslices.mean_ratio)
    return [
        _record(c.slice_errors_record(nominal), errors, labels),
        _record(c.slice_events_record(nominal), total, labels),
        _record(judged, slice_judgement(errors_, events, slo.timeslices), labels),
    ]


def slice_window_rules(slo: SLO, window: float, scale: Scale) -> list[dict]:
    """Timeslices SLOs: a window's "errors" are its bad slices (mean-ratio: the sum of
    its slices' error ratios) and its "events" its judged slices, so every ratio, budget
    and alert rule reads the bad-slice share (the mean error ratio) unchanged. Windows
    above 6h record only the ratio, like derived windows."""
    assert slo.timeslices is not None
    nominal = format_duration(window)
    slice_ = format_duration(slo.timeslices.window)
    judged = c.slice_judgement_record(slice_, slo.timeslices.mean_ratio) + selector(slo)
    span = scale.duration(window)
    bad, count = f"sum_over_time({judged}[{span}])", f"count_over_time({judged}[{span}])"
    if is_derived(window):
        return [_record(c.error_ratio_record(nominal), f"{bad} / {count}", series_labels(slo))]
    return counted_window_rules(slo, nominal, bad, count)


def sli_rules(slo: SLO, scale: Scale) -> list[dict]:
    exact, derived = windows_of(slo)
    if slo.timeslices is not None:
        return slice_rules(slo, scale) + [
            r for w in exact + derived for r in slice_window_rules(slo, w, scale)
        ]
    rules = [r for w in exact for r in exact_window_rules(slo, w, scale)]
    rules += [derived_window_rule(slo, w, scale) for w in derived]
    return rules + traffic_ratio_rules(slo, scale)


# --- 3. metadata ----------------------------------------------------------------------------


def metadata_rules(slo: SLO) -> list[dict]:
    labels = series_labels(slo)
    period_ratio = c.error_ratio_record(format_duration(slo.window)) + selector(slo)
    return [
        _record(c.OBJECTIVE_RECORD, f"vector({number(slo.target)})", labels),
        _record(
            c.BUDGET_REMAINING_RECORD,
            f"1 - {period_ratio} / {number(slo.error_budget)}",
            labels,
        ),
    ]


# --- 4. alerts ------------------------------------------------------------------------------


def threshold_expr(slo: SLO, window: BurnWindow) -> str:
    """The error ratio the condition compares with: a literal, or for a traffic-aware
    SLO ``traffic ratio × c × (1 − objective)`` (``tokenslo.core.burnrate``)."""
    if not slo.alerting.traffic_aware:
        return number(threshold_of(slo, window))
    ratio = c.traffic_ratio_record(format_duration(window.long_window)) + selector(slo)
    return f"{ratio} * {number(window.budget_fraction * slo.error_budget)}"


def burn_alert(slo: SLO, window: BurnWindow, scale: Scale) -> dict:
    long_, short = format_duration(window.long_window), format_duration(window.short_window)
    threshold = threshold_expr(slo, window)
    factor = factor_label(factor_of(slo, window))
    sel = selector(slo)
    rule: dict = {
        "alert": c.BURN_ALERT,
        "expr": (
            f"{c.error_ratio_record(long_)}{sel} > {threshold}"
            f" and {c.error_ratio_record(short)}{sel} > {threshold}"
        ),
    }
    if window.for_ > 0:
        rule["for"] = scale.duration(window.for_)
    rule["labels"] = {
        **slo.alerting.labels,
        c.SEVERITY_LABEL: window.severity,
        c.SLO_LABEL: slo.name,
        c.SERVICE_LABEL: slo.service,
        c.LONG_WINDOW_LABEL: long_,
        c.SHORT_WINDOW_LABEL: short,
        c.BURN_FACTOR_LABEL: factor,
    }
    rule["annotations"] = {
        "summary": f"{slo.service}/{slo.name}: error budget burning {factor}x too fast",
        "description": burn_description(slo, window),
        **slo.alerting.annotations,
    }
    return rule


def burn_description(slo: SLO, window: BurnWindow) -> str:
    long_, short = format_duration(window.long_window), format_duration(window.short_window)
    period = format_duration(slo.window)
    share = percent(window.budget_fraction)
    if slo.alerting.traffic_aware:
        return (
            f"Over {share} of the {period} error budget's errors fell in the last {long_}"
            f" (traffic-aware: error ratio above {share} x (1 - objective) x events in"
            f" {period} / events in {long_}, over both {long_} and {short};"
            f" objective {slo.objective:g}%)."
        )
    return (
        f"{share} of the {period} error budget burns in {long_} at this rate: error ratio"
        f" above {percent(threshold_of(slo, window))} over both {long_} and {short}"
        f" (objective {slo.objective:g}%)."
    )


def no_data_counts(slo: SLO) -> tuple[str, str]:
    """The raw (events, errors) count records whose absence means no data: the 5m counts,
    or a timeslices SLO's slice counts (its 5m records count judged slices, absent also
    when there is simply no traffic)."""
    if slo.timeslices is None:
        base = format_duration(BASE_WINDOW)
        return c.events_record(base), c.errors_record(base)
    nominal = format_duration(slo.timeslices.window)
    return c.slice_events_record(nominal), c.slice_errors_record(nominal)


def no_data_alert(slo: SLO, scale: Scale) -> dict:
    wait = format_duration(NO_DATA_FOR)
    events, errors = no_data_counts(slo)
    return {
        "alert": c.NO_DATA_ALERT,
        # Either count absent: no events, or (latency) no bucket at the threshold, whose
        # errors record is then absent rather than read as zero good events.
        "expr": f"absent({events}{selector(slo)}) or absent({errors}{selector(slo)})",
        "for": scale.duration(NO_DATA_FOR),
        "labels": {
            **slo.alerting.labels,
            c.SEVERITY_LABEL: c.NO_DATA_SEVERITY,
            c.SLO_LABEL: slo.name,
            c.SERVICE_LABEL: slo.service,
        },
        "annotations": {
            "summary": f"{slo.service}/{slo.name}: no SLI data",
            "description": (
                f"The SLI's event or error count has been absent for {wait}, so the SLO"
                " cannot be evaluated and burn-rate alerts cannot fire. Is the target"
                " scraped? For a latency SLI: is the threshold one of the histogram's"
                " buckets (`tokenslo slo validate --prometheus URL`)?"
            ),
            **slo.alerting.annotations,
        },
    }


def alert_rules(slo: SLO, scale: Scale) -> list[dict]:
    rules = [burn_alert(slo, w, scale) for w in policy_for(slo)]
    if slo.alerting.page or slo.alerting.ticket:
        rules.append(no_data_alert(slo, scale))
    return rules


# --- 5. calendar ----------------------------------------------------------------------------


def calendar_group(slo: SLO, plan: cal.CalendarPlan, scale: Scale) -> dict:
    """Period-to-date errors and events (sums of the SLO group's step counts), and the
    budget remaining, as ``slo status`` computes it: absent while the period has no
    events. Its own group: one evaluation sums up to a year of steps, too much for every
    30s, and the alerts do not read it."""
    sel, labels = selector(slo), series_labels(slo)
    step = format_duration(plan.step)
    errors = c.errors_record(c.PERIOD_TO_DATE)
    events = c.events_record(c.PERIOD_TO_DATE)
    budget = f"1 - ({errors}{sel} / ({events}{sel} > 0)) / {number(slo.error_budget)}"
    return {
        "name": c.calendar_group_name(slo.name),
        "interval": scale.interval(cal.CALENDAR_INTERVAL, MIN_INTERVAL),
        "rules": [
            _record(errors, cal.period_to_date(c.errors_record(step) + sel, plan), labels),
            _record(events, cal.period_to_date(c.events_record(step) + sel, plan), labels),
            _record(c.CALENDAR_BUDGET_REMAINING_RECORD, budget, labels),
        ],
    }


# --- assembly -------------------------------------------------------------------------------


def rule_group(slo: SLO, scale: Scale) -> dict:
    """One group per SLO. Rules in a group run in order at each evaluation, so the
    alerts always see this evaluation's recorded ratios (no extra interval of lag)."""
    return {
        "name": c.group_name(slo.name),
        "interval": scale.interval(BASE_INTERVAL, MIN_INTERVAL),
        "rules": sli_rules(slo, scale) + metadata_rules(slo) + alert_rules(slo, scale),
    }


def slo_groups(slo: SLO, scale: Scale, now: float) -> list[dict]:
    """The SLO's group, then its calendar group when it can have one."""
    plan = cal.plan(slo, scale.factor, now)
    groups = [rule_group(slo, scale)]
    if isinstance(plan, cal.CalendarPlan):
        groups.append(calendar_group(slo, plan, scale))
    return groups


def groups_per_slo(
    slos: Sequence[SLO], time_scale: float = 1.0, now: float | None = None
) -> list[list[dict]]:
    """The rule groups of each SLO in ``slos``. ``now`` (default: the clock) decides
    whether a calendar SLO's time zone keeps a fixed UTC offset (``rules.calendar``)."""
    scale = Scale(check_time_scale(time_scale))
    validate(slos)
    at = time.time() if now is None else now
    return [slo_groups(slo, scale, at) for slo in slos]


def generate_rule_groups(
    slos: Sequence[SLO], time_scale: float = 1.0, now: float | None = None
) -> list[dict]:
    """Prometheus rule groups (as plain dicts) for ``slos``."""
    return [g for groups in groups_per_slo(slos, time_scale, now) for g in groups]


def render_rules(
    slos: Sequence[SLO], fmt: str = "prometheus", time_scale: float = 1.0, now: float | None = None
) -> str:
    """YAML text of the rules, with the do-not-edit header."""
    if fmt not in FORMATS:
        raise InputError(
            f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", field="--format"
        )
    per_slo = groups_per_slo(slos, time_scale, now)
    header = [c.GENERATED_HEADER, *time_scale_note(time_scale)]
    if fmt == "prometheus":
        body = _dump({"groups": [g for groups in per_slo for g in groups]})
    else:
        body = "---\n".join(_dump(doc) for doc in operator_documents(slos, per_slo))
    return "\n".join(header) + "\n" + body


def time_scale_note(time_scale: float) -> list[str]:
    if time_scale == 1:
        return []
    return [
        f"# time scale {time_scale:g}: every window, 'for' and interval is divided by"
        f" {time_scale:g}.",
        "# This is a compressed-time simulation for lab rehearsals, not for production;",
        "# rule names and window labels keep their nominal (unscaled) windows.",
    ]


def operator_documents(slos: Sequence[SLO], per_slo: Sequence[Sequence[dict]]) -> list[dict]:
    """One ``PrometheusRule`` per service, holding that service's SLO groups."""
    by_service: dict[str, list[dict]] = {}
    for slo, groups in zip(slos, per_slo, strict=True):
        by_service.setdefault(slo.service, []).extend(groups)
    return [
        {
            "apiVersion": c.OPERATOR_API_VERSION,
            "kind": c.OPERATOR_KIND,
            "metadata": {
                "name": c.OPERATOR_NAME_PREFIX + dns_label(service),
                "labels": {c.MANAGED_BY_LABEL: c.MANAGED_BY_VALUE},
            },
            "spec": {"groups": service_groups},
        }
        for service, service_groups in by_service.items()
    ]


def dns_label(text: str) -> str:
    """Kubernetes object names are lowercase RFC 1123 labels."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:50] or "service"


def _dump(doc: dict) -> str:
    return yaml.safe_dump(
        doc, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True
    )


# --- number formatting ----------------------------------------------------------------------


def number(value: float) -> str:
    """A literal PromQL number without float noise (0.0144, not 0.014400000000000001)."""
    return f"{value:.12g}"


def factor_label(factor: float) -> str:
    return f"{factor:.4g}"


def percent(ratio: float) -> str:
    return f"{ratio * 100:.4g}%"


def iter_alerts(groups: Iterable[dict]) -> Iterable[dict]:
    """Every alerting rule in ``groups`` (tests and the timing harness look them up)."""
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                yield rule
