"""Chaos Toolkit probes of the ``tokenslo`` extension (``module: tokenslo.chaos.probes``).

SLO numbers come from the engine (``tokenslo.engine.evaluator``), expected alert
timings from ``tokenslo.core.burnrate`` (via ``tokenslo.chaos.theory``) scaled by
the time scale of the rules Prometheus runs. Probes that *check* something take
``require_*``/``expect`` arguments and raise when the expectation is not met, so
the check shows as a failed activity in the journal (``tokenslo chaos run`` then
exits 1); their outputs (detection times, ratios) land in the journal.
Windows are given nominally (``5m``, as in the SLO policy) and divided by the
time scale, so one experiment file runs in compressed and in real time.
"""

import math
import time
from datetime import datetime

import requests

from tokenslo.chaos import runstate, targets, theory
from tokenslo.chaos.actions import CLEARED_AT, INJECTED_AT
from tokenslo.chaos.tokens import HTTP_TIMEOUT, api_call_from, issue_token
from tokenslo.chaos.types import Configuration
from tokenslo.core import burnrate
from tokenslo.core.durations import format_duration, parse_duration
from tokenslo.core.timescale import scaled, scaled_duration
from tokenslo.engine import backtest, evaluator
from tokenslo.errors import InputError, UnavailableError
from tokenslo.jws import token_fingerprint
from tokenslo.prometheus.client import PromClient
from tokenslo.rules import conventions as c

__all__ = [
    "slo_burn_rate",
    "slo_state",
    "validation_success_ratio",
    "alert_state",
    "wait_for_alert",
    "wait_for_alert_resolved",
    "named_alert_state",
    "wait_for_named_alert",
    "alert_delivered",
    "token_can_be_issued",
    "remember_token",
    "remembered_token_validates",
    "revocation_propagation",
    "jwks_document",
]

MAX_WAIT = 600.0
MAX_DATA_WAIT = 30.0
PROFILE_POINTS = 300  # at most this many stretches in the traffic profile of a window
OBSERVED_POINTS = 1000  # at most this many points of each window after the injection
EXPECT = ("any", "yes", "no")


class CheckNotMet(AssertionError):
    """A check probe's expectation did not hold (the activity fails in the journal)."""


def _context(configuration: Configuration | None) -> tuple[targets.Targets, runstate.RunState]:
    resolved = targets.resolve(configuration)
    return resolved, runstate.current(resolved.state_dir)


def _bounded(seconds: float, name: str = "timeout") -> float:
    value = float(seconds)
    if not 0 < value <= MAX_WAIT:
        raise ValueError(f"{name} must be in (0, {MAX_WAIT:g}] seconds, got {seconds!r}")
    return value


def _expect(expect: str) -> str:
    if expect not in EXPECT:
        raise ValueError(f"expect must be one of {', '.join(EXPECT)}, got {expect!r}")
    return expect


# -- SLOs through the engine -------------------------------------------------------------------


def slo_burn_rate(
    slo: str,
    window: str = "5m",
    max_page_ratio: float = 0.0,
    configuration: Configuration | None = None,
) -> dict:
    """Burn rate of SLO ``slo`` over the nominal ``window`` (divided by the rules' time
    scale), through the engine. ``page_ratio`` is the burn rate over the lowest burn
    factor any of the SLO's pages fires at: below 1 it is not burning fast enough to page (use
    it as ``tolerance: {type: range, target: page_ratio, range: [0, 1]}``). No
    traffic counts as not burning (``state: no_traffic``); absent series raise.
    ``max_page_ratio`` > 0 makes it a check (fails above it) for use in a method."""
    resolved, _run = _context(configuration)
    model = targets.find_slo(resolved, slo)
    scale = targets.time_scale_for(resolved, model)
    nominal = parse_duration(window)
    counts = _window_counts(resolved, model, scaled(nominal, scale))
    if counts is None or counts.total is None or counts.errors is None:
        raise UnavailableError(f"no data for SLO {slo!r} over {window}: total series absent")
    ratio = burnrate.error_ratio(counts.errors, counts.total)
    burn = 0.0 if ratio is None else burnrate.burn_rate(ratio, model.objective)
    page_factor = _page_factor(resolved, model, scale)
    result = {
        "slo": slo,
        "window": window,
        "scaled_window": scaled_duration(nominal, scale),
        "time_scale": scale,
        "state": "no_traffic" if ratio is None else "traffic",
        "errors": counts.errors,
        "total": counts.total,
        "error_ratio": ratio,
        "sli": None if ratio is None else 1.0 - ratio,
        "burn_rate": burn,
        "page_factor": page_factor,
        "page_ratio": burn / page_factor if page_factor else None,
    }
    limit = float(max_page_ratio)
    if limit > 0 and result["page_ratio"] is not None and result["page_ratio"] > limit:
        raise CheckNotMet(
            f"SLO {slo} burns {burn:.3g}x over {window} ({result['scaled_window']} scaled): "
            f"{result['page_ratio']:.3g} of its page factor, above {limit:g}"
        )
    return result


def _window_counts(resolved: targets.Targets, model, seconds: float):
    """The engine's counts over ``seconds``; a target scraped only once so far has no
    rate yet, so absent series are retried for one window plus two scrapes."""
    url = resolved.url("prometheus")
    patience = min(MAX_DATA_WAIT, seconds + 2 * targets.prometheus_timing(url).scrape_interval)
    deadline = time.monotonic() + patience
    with PromClient(url) as client:
        while True:
            counts = evaluator.evaluate_window([model], client, seconds, time.time())[model.name]
            if counts is not None and counts.total is not None and counts.errors is not None:
                return counts
            if time.monotonic() >= deadline:
                return counts
            time.sleep(0.5)


def _page_factor(resolved: targets.Targets, model, scale: float) -> float | None:
    """The lowest burn factor any of the SLO's pages fires at now. A traffic-aware page's
    factor is ``c × N_period / N_long`` from the events its rules count over the
    (scaled) period and long window, so a young or quiet target reads as close to paging
    as its rules make it; a page whose long window saw no events cannot fire."""
    page = theory.conditions(model, "page") or list(burnrate.policy_for(model))
    if not page:
        return None
    if not model.alerting.traffic_aware:
        return min(burnrate.factor_of(model, w) for w in page)

    def events(seconds: float) -> float | None:
        counts = _window_counts(resolved, model, seconds)
        if counts is None or counts.total is None:
            return None
        return _events(model, counts.total, seconds)

    period = events(scaled(model.window, scale))
    lowest = min(
        burnrate.threshold_at(model, w, period, events(scaled(w.long_window, scale))) for w in page
    )
    return lowest / model.error_budget if math.isfinite(lowest) else None


def slo_state(slo: str, configuration: Configuration | None = None) -> dict:
    """The engine's full status of SLO ``slo`` now (state, SLI, budget, burn rates),
    over its real windows — under a rules time scale the period is not compressed."""
    resolved, _run = _context(configuration)
    model = targets.find_slo(resolved, slo)
    with PromClient(resolved.url("prometheus")) as client:
        status = evaluator.evaluate([model], client)
    return evaluator.to_json(status)[0]


def validation_success_ratio(
    window: str = "5m",
    slo: str = "token-validation-success",
    configuration: Configuration | None = None,
) -> float:
    """Share of the gateway's token validations that succeeded over the nominal
    ``window`` (the SLI of the validation SLO); raises when there were none."""
    result = slo_burn_rate(slo, window, configuration=configuration)
    if result["sli"] is None:
        raise UnavailableError(f"no validations over {window} ({result['scaled_window']} scaled)")
    return result["sli"]


# -- alerts ------------------------------------------------------------------------------------


def _active_alerts(prometheus_url: str, alertname: str, labels: dict) -> list[dict]:
    return [
        a
        for a in targets.active_alerts(prometheus_url, alertname)
        if all(a.get("labels", {}).get(k) == v for k, v in labels.items() if v)
    ]


def _unix(rfc3339: str | None) -> float | None:
    """Prometheus' activeAt (RFC 3339, nanoseconds) as unix seconds."""
    if not rfc3339:
        return None
    text = rfc3339.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _labels(slo: str, severity: str, long_window: str) -> dict:
    return {c.SLO_LABEL: slo, c.SEVERITY_LABEL: severity, c.LONG_WINDOW_LABEL: long_window}


def alert_state(
    slo: str,
    severity: str = "page",
    long_window: str = "",
    alertname: str = c.BURN_ALERT,
    configuration: Configuration | None = None,
) -> dict:
    """Whether alert ``alertname`` of SLO ``slo`` (and ``severity``, optionally one
    ``long_window``) is inactive, pending or firing in Prometheus, and since when."""
    resolved, _run = _context(configuration)
    found = _active_alerts(
        resolved.url("prometheus"), alertname, _labels(slo, severity, long_window)
    )
    firing = [a for a in found if a.get("state") == "firing"]
    chosen = firing or found
    state = "firing" if firing else ("pending" if found else "inactive")
    active_at = min((_unix(a.get("activeAt")) or 0.0 for a in chosen), default=None)
    return {
        "alertname": alertname,
        "slo": slo,
        "state": state,
        "active_at": active_at,
        "long_windows": sorted({a["labels"].get(c.LONG_WINDOW_LABEL, "") for a in chosen}),
    }


def _injected_at(run: runstate.RunState, event: str = INJECTED_AT) -> float:
    at = run.events.get(event)
    if at is None:
        raise InputError(
            f"no {event.replace('_', ' ')} recorded in this run: call a fault action first"
        )
    return at


def _slack(timing: targets.PromTiming, poll_interval: float) -> float:
    return theory.slack_seconds(timing.scrape_interval, timing.evaluation_interval, poll_interval)


def _per_second(model) -> bool:
    """Whether the SLO's SLI queries give per-second rates (``rate(x[{{window}}])``)
    rather than counts over the window (``increase(...)``; the engine's latency SLIs).
    The engine only needs their ratio; the theory needs counts (rate × window)."""
    total = getattr(model.sli, "total", None)
    return isinstance(total, str) and "rate(" in total and "increase(" not in total


def _events(model, total: float, seconds: float) -> float:
    """Events over ``seconds`` from the engine's total for that window (``_per_second``)."""
    return total * seconds if _per_second(model) else total


def _profile_at(
    resolved: targets.Targets, model, scrape: float, seconds: float, at: float, until: float
) -> tuple[list[theory.Held], list[theory.Held], float]:
    """(events and errors per stretch of ``step`` seconds over the ``seconds`` before
    ``at``, then from ``at`` up to ``until``, oldest first, as counts; ``step``): one
    range query of the engine's own SLI queries over a window of one step (at least two
    ``scrape`` intervals). Steps without a sample count as no traffic."""
    step = max(2 * scrape, seconds / PROFILE_POINTS)
    count = max(1, math.ceil(seconds / step))
    later = max(0, math.floor((until - at) / step))
    start = at - (count - 1) * step
    ((_window, query),) = evaluator.plan_queries([model], windows_of=lambda _slo: (step,))
    with PromClient(resolved.url("prometheus")) as client:
        matrix = backtest.parse_matrix(client.query_range(query, start, at + later * step, step))
    unit = step if _per_second(model) else 1.0
    events = [0.0] * (count + later)
    errors = [0.0] * (count + later)
    for kind, into in (("total", events), ("errors", errors)):
        for ms, value in matrix.get((model.name, kind), {}).items():
            index = round((ms / 1000 - start) / step)
            if 0 <= index < len(into) and value is not None:
                into[index] = value * unit
    held = [theory.Held(step, e, x) for e, x in zip(events, errors, strict=True)]
    return held[:count], held[count:], step


def _steady_theory(
    model, severity: str, error_rate: float, scale: float, long_window: str
) -> theory.Expectation | None:
    """The textbook expectation (windows and period full of steady, error-free traffic):
    which condition the fault's error rate can fire at all (bad input when none). A
    traffic-aware condition may still fire where the textbook says never (a period
    holding more traffic than its long window's share, a lab younger than its period),
    so for such an SLO None is no bad input: the fastest condition is watched."""
    steady = theory.first_to_fire(model, severity, error_rate, scale, long_window)
    if steady is None and not (
        model.alerting.traffic_aware and theory.conditions(model, severity, long_window)
    ):
        raise InputError(
            f"SLO {model.name!r}: no {severity} condition"
            f"{' on ' + long_window if long_window else ''} fires at error rate {error_rate}"
        )
    return steady


def _watched_window(
    model, severity: str, long_window: str, steady: theory.Expectation | None
) -> str:
    """The long window of the condition a probe watches: the one asked for, else the
    textbook's first to fire, else (traffic-aware, none in the textbook) the shortest."""
    if long_window:
        return long_window
    if steady is not None:
        return steady.long_window
    fastest = min(theory.conditions(model, severity), key=lambda w: w.long_window)
    return format_duration(fastest.long_window)


def _never(model, severity: str, long_window: str, scale: float) -> theory.Expectation:
    """The watched condition with no theory (what a probe reports when none exists)."""
    return theory.expectation(model, theory.conditions(model, severity, long_window)[0], 0.0, scale)


def _period_held(
    resolved: targets.Targets,
    model,
    scrape: float,
    scale: float,
    injected: float,
    horizon: float,
) -> theory.PeriodHeld | None:
    """What a traffic-aware SLO's (scaled) period held at the injection: its events (the
    engine's count over the period) and the stretches that slide out of it within
    ``horizon`` seconds (all empty while the target is younger than the period). None
    for a static SLO, whose threshold ignores the period."""
    if not model.alerting.traffic_aware:
        return None
    period = scaled(model.window, scale)
    with PromClient(resolved.url("prometheus")) as client:
        counts = evaluator.evaluate_window([model], client, period, injected)[model.name]
    total = 0.0 if counts is None or counts.total is None else counts.total
    oldest = injected - period + horizon
    leaving, _after, _step = _profile_at(resolved, model, scrape, horizon, oldest, oldest)
    return theory.PeriodHeld(_events(model, total, period), leaving)


def _held_theory(
    resolved: targets.Targets,
    timing: targets.PromTiming,
    model,
    severity: str,
    error_rate: float,
    scale: float,
    long_window: str,
    injected: float,
    until: float,
) -> tuple[theory.Expectation | None, dict]:
    """(expectation from the traffic the windows held at the injection and the traffic
    that really came after it until ``until``, a summary for the journal). Windows still
    full of earlier (or uneven, real) traffic dilute the errors; a fault that slows
    paced clients (a latency fault) also lowers the rate that brings the errors. A
    timeslices SLO gets none: its alerts count slice judgements, not the requests held."""
    if model.timeslices is not None:
        return None, {"timeslices": "no prediction from the traffic held: alerts count slices"}
    spans = sorted(
        {
            scaled(span, scale)
            for w in theory.conditions(model, severity, long_window)
            for span in (w.long_window, w.short_window)
        }
    )
    profile, after_profile, step = _profile_at(
        resolved, model, timing.scrape_interval, spans[-1], injected, until
    )
    rate = None
    after = until - injected
    if after >= 2 * step:
        with PromClient(resolved.url("prometheus")) as client:
            counts = evaluator.evaluate_window([model], client, after, until)[model.name]
        if counts is not None and counts.total is not None:
            rate = counts.total * (1.0 if _per_second(model) else 1.0 / after)
    period = _period_held(resolved, model, timing.scrape_interval, scale, injected, spans[-1])
    real = theory.first_to_fire_held(
        model, severity, error_rate, scale, profile, long_window, rate, after_profile, period
    )
    summary: dict = {
        **({} if period is None else {"period_events": round(period.events, 3)}),
        "profile_step_seconds": step,
        "rate_after_injection": None if rate is None else round(rate, 3),
        "events_after_injection": [round(h.events, 3) for h in after_profile],
    }
    for span in spans:
        part = theory.window_of(profile, span)
        summary[format_duration(span)] = {
            "events": round(sum(h.events for h in part), 3),
            "errors": round(sum(h.errors for h in part), 3),
        }
    return real, summary


def _window_series(
    resolved: targets.Targets, model, span: float, injected: float, until: float, step: float
) -> dict[float, tuple[float, float]]:
    """The SLI over a window of ``span`` seconds as it stood every ``step`` from the
    injection to ``until``: ``{seconds after the injection: (events, errors)}``, from the
    engine's own query, the one the alert's recording rule evaluates."""
    ((_window, query),) = evaluator.plan_queries([model], windows_of=lambda _slo: (span,))
    with PromClient(resolved.url("prometheus")) as client:
        matrix = backtest.parse_matrix(client.query_range(query, injected, until, step))
    errors = matrix.get((model.name, "errors"), {})
    out: dict[float, tuple[float, float]] = {}
    for ms, total in matrix.get((model.name, "total"), {}).items():
        bad = errors.get(ms)
        if total is not None and bad is not None:
            out[round(ms / 1000 - injected, 3)] = (total, bad)
    return out


def _observed_theory(
    resolved: targets.Targets,
    timing: targets.PromTiming,
    model,
    severity: str,
    scale: float,
    long_window: str,
    injected: float,
    until: float,
) -> theory.Expectation | None:
    """When the condition on ``long_window`` held in the SLI's own data after the injection
    (both windows over the threshold), plus ``for``: what the alert rule, evaluating the
    same series, must match within the slack. None without a condition or data."""
    found = theory.conditions(model, severity, long_window)
    measured = found and _condition_series(
        resolved, timing, model, found[0], scale, injected, until
    )
    if not measured:
        return None
    expected = theory.observed_expectation(model, found[0], scale, *measured)
    return expected if expected.theory_seconds is not None else None


def _condition_series(
    resolved: targets.Targets,
    timing: targets.PromTiming,
    model,
    window,
    scale: float,
    since: float,
    until: float,
) -> tuple[theory.Series, theory.Series, theory.Series | None] | None:
    """``_window_series`` of a condition's long and short windows, and for a
    traffic-aware SLO of its (scaled) period, whose events move the threshold, from
    ``since`` to one evaluation interval past ``until`` (None when too short to read).

    An alert without ``for`` fires at the very evaluation where the condition first
    holds, which the query's grid (half an interval apart) may otherwise just miss."""
    until += timing.evaluation_interval
    step = max(timing.evaluation_interval / 2, (until - since) / OBSERVED_POINTS)
    if until - since < step:
        return None
    spans = [window.long_window, window.short_window]
    if model.alerting.traffic_aware:
        spans.append(model.window)
    series = [
        _window_series(resolved, model, scaled(span, scale), since, until, step) for span in spans
    ]
    return series[0], series[1], series[2] if len(series) > 2 else None


def wait_for_alert(
    slo: str,
    severity: str = "page",
    timeout: float = 60.0,
    error_rate: float = 1.0,
    long_window: str = "",
    alertname: str = c.BURN_ALERT,
    require_within: bool = True,
    poll_interval: float = 0.25,
    configuration: Configuration | None = None,
) -> dict:
    """Wait (at most ``timeout`` s) for SLO ``slo``'s ``severity`` burn-rate alert to
    fire, measured from the last recorded fault injection. ``theory_seconds`` is when
    the burn-rate condition held in the SLI's own data after the injection (both
    windows, scaled, over the threshold; a traffic-aware SLO's threshold at each time
    from the events then measured over its scaled period and long window), plus ``for``:
    the alert must follow within the slack. ``predicted_theory_seconds`` predicts it from
    ``error_rate`` (error ratio the fault causes) applied to the traffic, starting from
    what the alert's windows held at the injection; ``steady_theory_seconds`` is the
    textbook value for windows full of steady, error-free traffic (None when that never
    fires a traffic-aware SLO's condition). ``slack_seconds`` covers scrape, evaluation
    and polling. By default the fastest condition (e.g. the 1h/5m page) is the one
    watched; ``long_window`` picks another. With ``require_within`` the probe fails
    unless the alert fired within theory + slack."""
    wait = _bounded(timeout)
    resolved, run = _context(configuration)
    model = targets.find_slo(resolved, slo)
    scale = targets.time_scale_for(resolved, model)
    injected = _injected_at(run)
    steady = _steady_theory(model, severity, float(error_rate), scale, long_window)
    chosen = _watched_window(model, severity, long_window, steady)
    timing = targets.prometheus_timing(resolved.url("prometheus"))
    slack = _slack(timing, poll_interval)
    labels = _labels(slo, severity, chosen)
    # An alert already active before the injection (an earlier incident) is not ours.
    cutoff = injected - slack
    fired_at = active_at = None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for alert in _active_alerts(resolved.url("prometheus"), alertname, labels):
            started = _unix(alert.get("activeAt"))
            if alert.get("state") == "firing" and started is not None and started >= cutoff:
                fired_at, active_at = time.time(), started
                break
        if fired_at is not None:
            break
        time.sleep(poll_interval)
    until = fired_at or time.time()
    predicted, held = _held_theory(
        resolved, timing, model, severity, float(error_rate), scale, chosen, injected, until
    )
    real = _observed_theory(resolved, timing, model, severity, scale, chosen, injected, until)
    expected = real or predicted or steady or _never(model, severity, chosen, scale)
    result = {
        "alertname": alertname,
        "slo": slo,
        "severity": severity,
        **expected.to_json(),
        "theory_seconds": None if real is None else round(real.fires_after(), 3),
        "predicted_theory_seconds": None
        if predicted is None
        else round(predicted.fires_after(), 3),
        "steady_theory_seconds": None if steady is None else round(steady.fires_after(), 3),
        "held_at_injection": held,
        "error_rate": float(error_rate),
        "time_scale": scale,
        "fired": fired_at is not None,
        "detection_seconds": None if fired_at is None else round(fired_at - injected, 3),
        "pending_after_seconds": None if active_at is None else round(active_at - injected, 3),
        "slack_seconds": round(slack, 3),
        "timeout_seconds": wait,
    }
    bound = None if real is None else real.fires_after() + slack
    result["within"] = fired_at is not None and bound is not None and fired_at - injected <= bound
    run.events[f"alert_fired:{slo}:{severity}"] = fired_at or 0.0
    if require_within and not result["within"]:
        measured = (
            f"fired after {result['detection_seconds']}s"
            if result["fired"]
            else f"did not fire within {wait:g}s"
        )
        basis = (
            "its SLI never held the condition after the injection, so no theory"
            if real is None
            else f"theory {real.theory_seconds:.2f}s + slack {slack:.2f}s"
        )
        raise CheckNotMet(
            f"{alertname} {severity} for {slo} ({expected.long_window}/{expected.short_window}): "
            f"{measured}; {basis}"
        )
    return result


def _known_alert(resolved: targets.Targets, alertname: str) -> str:
    """Prometheus' URL, once it is known to evaluate an alert rule ``alertname``: a probe
    of an alert nobody loaded would wait for ever, or call the steady state held."""
    prometheus = resolved.url("prometheus")
    if alertname not in targets.alert_rule_names(prometheus):
        raise UnavailableError(
            f"Prometheus at {prometheus} has no alert rule {alertname!r} "
            "(the lab's security alerts are loaded only by the lab's Prometheus)"
        )
    return prometheus


def named_alert_state(alertname: str, configuration: Configuration | None = None) -> str:
    """``inactive``, ``pending`` or ``firing``: an alert that is not an SLO's burn-rate
    alert (the lab's security alerts, e.g. ``GatewayTokenReplaySuspected``), for a
    hypothesis tolerance such as ``inactive``. Fails when Prometheus has no such rule."""
    resolved, _run = _context(configuration)
    states = {
        a.get("state") for a in targets.active_alerts(_known_alert(resolved, alertname), alertname)
    }
    return "firing" if "firing" in states else ("pending" if states else "inactive")


def wait_for_named_alert(
    alertname: str,
    timeout: float = 30.0,
    poll_interval: float = 0.25,
    configuration: Configuration | None = None,
) -> dict:
    """Wait (at most ``timeout`` s) for alert ``alertname`` (no SLO: e.g. the lab's
    ``GatewayTokenReplaySuspected``) to fire after the recorded injection, and check it
    fired within the slack (scrape, evaluation, polling): these rules fire on the first
    event, with no ``for``. The output names the firing alert's labels."""
    wait = _bounded(timeout)
    resolved, run = _context(configuration)
    prometheus = _known_alert(resolved, alertname)
    injected = _injected_at(run)
    slack = _slack(targets.prometheus_timing(prometheus), poll_interval)
    fired_at, labels = None, {}
    deadline = time.monotonic() + wait
    while fired_at is None and time.monotonic() < deadline:
        for alert in targets.active_alerts(prometheus, alertname):
            started = _unix(alert.get("activeAt"))
            if (
                alert.get("state") == "firing"
                and started is not None
                and started >= injected - slack
            ):
                fired_at, labels = time.time(), alert.get("labels", {})
                break
        else:
            time.sleep(poll_interval)
    detection = None if fired_at is None else round(fired_at - injected, 3)
    result = {
        "alertname": alertname,
        "fired": fired_at is not None,
        "labels": labels,
        "detection_seconds": detection,
        "slack_seconds": round(slack, 3),
        "within": detection is not None and detection <= slack,
        "timeout_seconds": wait,
    }
    if not result["within"]:
        measured = f"fired after {detection}s" if fired_at else f"did not fire within {wait:g}s"
        raise CheckNotMet(f"{alertname}: {measured} (bound: slack {slack:.2f}s)")
    return result


def wait_for_alert_resolved(
    slo: str,
    severity: str = "page",
    timeout: float = 60.0,
    error_rate: float = 1.0,
    long_window: str = "",
    alertname: str = c.BURN_ALERT,
    allowance_seconds: float = 0.0,
    require_within: bool = True,
    poll_interval: float = 0.25,
    configuration: Configuration | None = None,
) -> dict:
    """Wait (at most ``timeout`` s) until SLO ``slo``'s ``severity`` alert (the fastest
    condition, or ``long_window``) is neither pending nor firing, measured from the
    last recorded fault clearing. Theory: the engine's reset time of the condition's
    windows after an incident of the recorded length at ``error_rate``, scaled (for a
    traffic-aware SLO, whose threshold moves with the traffic: when the condition
    stopped holding in the SLI's own data, as ``wait_for_alert`` measures its start);
    ``allowance_seconds`` adds a known lag outside the burn-rate math (e.g. the
    gateway's JWKS refresh cooldown)."""
    wait = _bounded(timeout)
    resolved, run = _context(configuration)
    model = targets.find_slo(resolved, slo)
    scale = targets.time_scale_for(resolved, model)
    expected = theory.first_to_fire(model, severity, float(error_rate), scale, long_window)
    chosen = expected.long_window if expected else long_window
    if not chosen and model.alerting.traffic_aware and theory.conditions(model, severity):
        chosen = _watched_window(model, severity, "", None)
    if not chosen:
        raise InputError(f"SLO {slo!r} has no {severity} condition")
    cleared = _injected_at(run, CLEARED_AT)
    incident = max(0.0, cleared - run.events.get(INJECTED_AT, cleared))
    reset = theory.resolution_seconds(model, chosen, float(error_rate), incident, scale, severity)
    timing = targets.prometheus_timing(resolved.url("prometheus"))
    slack = _slack(timing, poll_interval) + float(allowance_seconds)
    labels = _labels(slo, severity, chosen)
    resolved_at = None
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not _active_alerts(resolved.url("prometheus"), alertname, labels):
            resolved_at = time.time()
            break
        time.sleep(poll_interval)
    if model.alerting.traffic_aware:
        # its threshold moves with the traffic: when the condition stopped holding in
        # the SLO's own data, as ``wait_for_alert`` reads when it started
        found = theory.conditions(model, severity, chosen)
        until = resolved_at or time.time()
        series = found and _condition_series(
            resolved, timing, model, found[0], scale, cleared, until
        )
        reset = theory.observed_reset(model, found[0], *series) if series else None
    result = {
        "alertname": alertname,
        "slo": slo,
        "severity": severity,
        "long_window": chosen,
        "resolved": resolved_at is not None,
        "resolution_seconds": None if resolved_at is None else round(resolved_at - cleared, 3),
        "theory_seconds": None if reset is None else round(reset, 3),
        "incident_seconds": round(incident, 3),
        "slack_seconds": round(slack, 3),
        "time_scale": scale,
    }
    result["within"] = resolved_at is not None and resolved_at - cleared <= (reset or 0.0) + slack
    if require_within and not result["within"]:
        measured = (
            f"resolved after {result['resolution_seconds']}s"
            if result["resolved"]
            else f"still active after {wait:g}s"
        )
        raise CheckNotMet(
            f"{alertname} {severity} for {slo} ({chosen}): {measured}; "
            f"theory {result['theory_seconds']}s + slack {slack:.2f}s"
        )
    return result


def alert_delivered(
    slo: str,
    severity: str = "page",
    status: str = "firing",
    timeout: float = 15.0,
    long_window: str = "",
    alertname: str = c.BURN_ALERT,
    require: bool = True,
    configuration: Configuration | None = None,
) -> dict:
    """Whether Alertmanager delivered SLO ``slo``'s alert with ``status`` (firing or
    resolved) to the lab's webhook receiver since the fault was injected (firing) or
    cleared (resolved); waits up to ``timeout`` s. Reports the delivery delay."""
    wait = _bounded(timeout)
    resolved, run = _context(configuration)
    if not resolved.has("webhook"):
        # Delivery cannot be observed without a receiver: say so, never pretend either way.
        return {"alertname": alertname, "slo": slo, "status": status, "delivered": None,
                "checked": False, "reason": "the target declares no webhook receiver"}  # fmt: skip
    since = _injected_at(run, INJECTED_AT if status == "firing" else CLEARED_AT)
    url = resolved.url("webhook") + "/notifications"
    wanted = _labels(slo, severity, long_window)
    found = None
    deadline = time.monotonic() + wait
    while found is None and time.monotonic() < deadline:
        records = targets.get_json(url, alertname=alertname).get("notifications", [])
        for record in records:
            labels = record.get("labels", {})
            if (
                record.get("status") == status
                and float(record.get("received_at", 0)) >= since
                and all(labels.get(k) == v for k, v in wanted.items() if v)
            ):
                found = record
                break
        if found is None:
            time.sleep(0.25)
    result = {
        "alertname": alertname,
        "slo": slo,
        "status": status,
        "delivered": found is not None,
        "delivery_seconds": None if found is None else round(found["received_at"] - since, 3),
        "long_window": None if found is None else found["labels"].get(c.LONG_WINDOW_LABEL),
    }
    if require and found is None:
        raise CheckNotMet(f"no {status} {alertname} for {slo} delivered within {wait:g}s")
    return result


# -- client-side token checks ------------------------------------------------------------------


def token_can_be_issued(
    role: str = "prober", expect: str = "any", configuration: Configuration | None = None
) -> bool:
    """Whether the IdP issues a client_credentials token to the target's ``role`` client
    now (a client-side check: it also sees dropped connections the server never counts).
    ``expect`` yes/no makes it a check that fails otherwise."""
    _expect(expect)
    resolved, _run = _context(configuration)
    token, outcome = issue_token(resolved, role)
    issued = token is not None
    if expect != "any" and issued != (expect == "yes"):
        raise CheckNotMet(f"token issuance for role {role}: {outcome} (expected {expect})")
    return issued


def remember_token(
    name: str = "existing", role: str = "prober", configuration: Configuration | None = None
) -> dict:
    """Issue a token now and keep it (in memory only) for ``remembered_token_validates``
    later — an "existing token" from before the fault. Returns only its SHA-256 prefix."""
    resolved, run = _context(configuration)
    token, outcome = issue_token(resolved, role)
    if token is None:
        raise CheckNotMet(f"could not issue a token for role {role}: {outcome}")
    run.remember_token(name, token)
    return {"name": name, "token_sha256_12": token_fingerprint(token)}


def remembered_token_validates(
    name: str = "existing",
    calls: int = 5,
    expect: str = "any",
    configuration: Configuration | None = None,
) -> bool:
    """Whether the token kept by ``remember_token`` is still accepted by the gateway
    on all of ``calls`` requests. ``expect`` yes/no makes it a check."""
    _expect(expect)
    resolved, run = _context(configuration)
    token = run.token(name)
    if token is None:
        raise InputError(f"no remembered token {name!r}: call remember_token first")
    outcomes = [api_call_from(resolved, token) for _ in range(max(1, int(calls)))]
    ok = all(o == 200 for o in outcomes)
    if expect != "any" and ok != (expect == "yes"):
        raise CheckNotMet(
            f"remembered token {token_fingerprint(token)}: gateway answered {outcomes}"
        )
    return ok


def revocation_propagation(
    objective_seconds: float,
    timeout: float = 20.0,
    role: str = "prober",
    expect: str = "any",
    poll_interval: float = 0.1,
    configuration: Configuration | None = None,
) -> dict:
    """Revocation propagation time (guide metric M6): issue a token, check the gateway
    accepts it, revoke it (RFC 7009), then poll the gateway until it rejects it (at
    most ``timeout`` s). ``objective_ratio`` = time / ``objective_seconds`` (use it as
    a range tolerance [0, 1]). ``expect`` yes (within) / no (exceeds) makes it a check."""
    _expect(expect)
    wait = _bounded(timeout)
    objective = float(objective_seconds)
    if objective <= 0:
        raise ValueError("objective_seconds must be > 0")
    resolved, _run = _context(configuration)
    token, outcome = issue_token(resolved, role)
    if token is None:
        raise UnavailableError(f"could not issue a token to revoke: {outcome}")
    first = api_call_from(resolved, token)
    if first != 200:
        raise UnavailableError(f"gateway did not accept a fresh token: {first}")
    try:
        response = requests.post(
            resolved.endpoints().require("revocation_endpoint"),
            data={"token": token},
            auth=resolved.credentials(role).auth,
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        raise UnavailableError(f"revocation request failed: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise UnavailableError(f"revocation answered HTTP {response.status_code}")
    revoked_at = time.monotonic()
    rejected_after = None
    while time.monotonic() - revoked_at < wait:
        if api_call_from(resolved, token) == 401:
            rejected_after = time.monotonic() - revoked_at
            break
        time.sleep(poll_interval)
    elapsed = rejected_after if rejected_after is not None else wait
    within = rejected_after is not None and rejected_after <= objective
    result = {
        "token_sha256_12": token_fingerprint(token),
        "propagated": rejected_after is not None,
        "propagation_seconds": None if rejected_after is None else round(rejected_after, 3),
        "at_least_seconds": round(elapsed, 3),
        "objective_seconds": objective,
        "objective_ratio": round(elapsed / objective, 4),
        "within_objective": within,
    }
    if expect != "any" and within != (expect == "yes"):
        raise CheckNotMet(
            f"revocation propagation {result['at_least_seconds']}s vs objective {objective:g}s "
            f"(expected {'within' if expect == 'yes' else 'exceeding'})"
        )
    return result


def jwks_document(expect: str = "any", configuration: Configuration | None = None) -> dict:
    """Fetch the IdP's JWKS as a client would: HTTP status, whether the body is a
    usable JSON key set, its kids and ``usable_keys`` (0 when unusable; as a hypothesis
    tolerance: ``{type: range, target: usable_keys, range: [1, 100]}``). ``expect``
    yes/no checks usability."""
    _expect(expect)
    resolved, _run = _context(configuration)
    result: dict = {"status": None, "usable": False, "kids": [], "usable_keys": 0}
    try:
        jwks_uri = resolved.endpoints().require("jwks_uri")
        response = requests.get(jwks_uri, timeout=HTTP_TIMEOUT)
        result["status"] = response.status_code
        keys = response.json().get("keys")
        if response.status_code == 200 and isinstance(keys, list):
            result["usable"] = True
            result["kids"] = [k.get("kid") for k in keys if isinstance(k, dict)]
            result["usable_keys"] = len(result["kids"])
    except requests.RequestException as exc:
        result["error"] = type(exc).__name__
    except (ValueError, AttributeError):
        result["error"] = "not a JSON key set"
    if expect != "any" and result["usable"] != (expect == "yes"):
        raise CheckNotMet(f"JWKS usable={result['usable']} (expected {expect}): {result}")
    return result
