"""Checks a JSON Schema cannot express: window ordering, PromQL syntax, likely mistakes.

Errors raise ``InputError`` at the YAML position of the field; likely mistakes
(an objective of 0.999, an alert that can never fire) are returned as
``Finding`` warnings so ``slo validate`` can report them without failing
unless ``--strict``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser

from tokenslo.core import burnrate
from tokenslo.core.calendar import timezone_error
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, EventsSLI, LatencySLI
from tokenslo.core.promql import has_window_placeholder, render_window, sli_exprs
from tokenslo.errors import InputError
from tokenslo.spec.yamlpos import Document, field_path

# The window PromQL fields are rendered with before parsing; any valid duration would do.
PARSE_WINDOW = "5m"
# A rate()/irate() call: per-second averages, not counts.
RATE_CALL = re.compile(r"\b(?:i?rate)\s*\(")


@dataclass(frozen=True)
class Finding:
    """A warning about a spec, with the same position information as an InputError."""

    file: str
    line: int | None
    column: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        return self.format()

    def format(self, label: str | None = None) -> str:
        """``file:line:col: [label: ]field: message``, the shape compilers and editors parse."""
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = f"{label}: " if label else ""
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {prefix}{field}{self.message}"


def finding(doc: Document, path: tuple, message: str, *, key: bool = False) -> Finding:
    line, column = doc.where(path, key=key)
    return Finding(doc.file, line, column, field_path(path), message)


def promql_error(expr: str) -> str | None:
    """The parser's message when ``expr`` is not valid PromQL, else None."""
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        return str(exc) or "invalid PromQL"
    return None


# --- errors ---------------------------------------------------------------------------------


def check_semantics(doc: Document, index: int, slo: SLO) -> None:
    """Raise for contradictions inside one SLO that the schema lets through."""
    base = ("slos", index)
    if slo.window <= 0:
        raise doc.error("window must be longer than 0s", (*base, "window"))
    if isinstance(slo.sli, LatencySLI) and slo.sli.metric.endswith("_bucket"):
        raise doc.error(
            f"give the histogram base name without _bucket "
            f"(e.g. {slo.sli.metric.removesuffix('_bucket')!r})",
            (*base, "sli", "latency", "metric"),
        )
    _check_traffic_aware_counts(doc, base, slo)
    _check_timeslices(doc, base, slo)
    if slo.calendar is not None:
        problem = timezone_error(slo.calendar.timezone)
        if problem:
            raise doc.error(problem, (*base, "calendar", "timezone"))
    for i, window in enumerate(slo.alerting.policy or ()):
        path = (*base, "alerting", "policy", i)
        if window.short_window <= 0 or window.long_window <= 0:
            raise doc.error("windows must be longer than 0s", path)
        if window.short_window >= window.long_window:
            raise doc.error(
                "short_window must be shorter than long_window "
                f"({_fmt(window.short_window)} >= {_fmt(window.long_window)})",
                (*path, "short_window"),
            )
        if window.long_window > slo.window:
            raise doc.error(
                f"long_window {_fmt(window.long_window)} is longer than the SLO window "
                f"{_fmt(slo.window)}",
                (*path, "long_window"),
            )


def _check_traffic_aware_counts(doc: Document, base: tuple, slo: SLO) -> None:
    """A traffic-aware threshold divides the period's events by the long window's; with
    rate() the totals are per-second averages, off by period / long window."""
    if not slo.alerting.traffic_aware or not isinstance(slo.sli, EventsSLI):
        return
    if RATE_CALL.search(slo.sli.total):
        raise doc.error(
            "alerting.burn_rate traffic-aware compares event counts across windows: write "
            "total with increase(), not rate() (a per-second rate is not a count)",
            (*base, "sli", "events", "total"),
        )


def _check_timeslices(doc: Document, base: tuple, slo: SLO) -> None:
    """A slice must fit in the period, and traffic-aware thresholds count events, which a
    bad-slice share does not have."""
    if slo.timeslices is None:
        return
    if not 0 < slo.timeslices.window < slo.window:
        raise doc.error(
            f"slice window {_fmt(slo.timeslices.window)} must be longer than 0s and shorter "
            f"than the SLO window {_fmt(slo.window)}",
            (*base, "timeslices", "window"),
        )
    if slo.timeslices.mean_ratio and slo.timeslices.target is not None:
        raise doc.error(
            "method mean-ratio averages the slices' ratios and judges no slice good or bad:"
            " remove target (or use method good-slices)",
            (*base, "timeslices", "target"),
        )
    if slo.alerting.traffic_aware:
        raise doc.error(
            "alerting.burn_rate traffic-aware scales thresholds by event counts; a timeslices"
            " SLO budgets slices, not events: use burn_rate static",
            (*base, "alerting", "burn_rate"),
        )


def check_promql(doc: Document, index: int, slo: SLO) -> None:
    """Every PromQL field, and every query built from the SLI, must parse."""
    base = ("slos", index, "sli")
    if isinstance(slo.sli, EventsSLI):
        for name in ("good", "bad", "total"):
            expr = getattr(slo.sli, name)
            if expr is None:
                continue
            problem = promql_error(render_window(expr, PARSE_WINDOW))
            if problem:
                raise doc.error(
                    f"invalid PromQL in SLO {slo.name!r}: {problem}", (*base, "events", name)
                )
        built_path: tuple = (*base, "events")
    else:
        built_path = (*base, "latency", "selector")
    for expr in sli_exprs(slo.sli, PARSE_WINDOW):
        problem = promql_error(expr)
        if problem:
            raise doc.error(
                f"SLO {slo.name!r} builds invalid PromQL ({problem}): {expr}", built_path, key=True
            )


# --- warnings -------------------------------------------------------------------------------


def warnings_for(doc: Document, index: int, raw: dict, slo: SLO) -> list[Finding]:
    base = ("slos", index)
    found: list[Finding] = []
    if slo.objective < 1:
        found.append(
            finding(
                doc,
                (*base, "objective"),
                f"objective {slo.objective:g}% is very low; it is a percent, "
                f"did you mean {slo.objective * 100:g}?",
            )
        )
    found += _unreachable_alerts(doc, base, slo)
    if isinstance(slo.sli, EventsSLI):
        for name in ("good", "bad", "total"):
            expr = getattr(slo.sli, name)
            if expr is not None and not has_window_placeholder(expr):
                found.append(
                    finding(
                        doc,
                        (*base, "sli", "events", name),
                        "no {{window}} placeholder: the query reads the same range for "
                        "every alert window",
                    )
                )
    if "loadtest" in raw and not slo.loadtest:
        found.append(
            finding(
                doc,
                (*base, "loadtest"),
                "loadtest block lists no requests; it gates nothing",
                key=True,
            )
        )
    return found


def _unreachable_alerts(doc: Document, base: tuple, slo: SLO) -> list[Finding]:
    """Conditions whose error-ratio threshold is >= 100%: no error rate can reach it.

    Not for traffic-aware SLOs, whose threshold moves with the traffic."""
    if slo.alerting.traffic_aware:
        return []
    found = []
    overridden = slo.alerting.policy is not None
    enabled = {"page": slo.alerting.page, "ticket": slo.alerting.ticket}
    windows = slo.alerting.policy or burnrate.default_policy(slo.window)
    for i, window in enumerate(windows):
        if not enabled[window.severity]:
            continue
        factor = burnrate.factor_of(slo, window)
        threshold = factor * (1 - slo.objective / 100)
        if threshold < 1:
            continue
        path = (*base, "alerting", "policy", i) if overridden else (*base, "objective")
        found.append(
            finding(
                doc,
                path,
                f"{window.severity} alert ({_fmt(window.long_window)}/{_fmt(window.short_window)},"
                f" burn factor {factor:g}) can never fire: factor x (1 - objective) = "
                f"{threshold:g} >= 1",
            )
        )
    return found


def _fmt(seconds: float) -> str:
    return format_duration(seconds)


def duplicate_name_error(
    name: str,
    first: tuple[str, int | None],
    second: tuple[str, int | None, int | None, str | None],
) -> InputError:
    file, line, column, field = second
    return InputError(
        f"duplicate SLO name {name!r}; first defined at {first[0]}:{first[1]}",
        file=file,
        line=line,
        column=column,
        field=field,
    )
