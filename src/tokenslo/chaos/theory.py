"""Expected alert timings of a chaos experiment, from the engine's burn-rate math. Pure.

A burn-rate alert holds when the error ratio over both its long and its short
window exceeds ``factor × (1 − objective)``; with a constant error rate from the
injection on, each window crosses at ``burnrate.detection_time``; the alert then
waits its ``for``. Under a rules time scale every window and ``for`` is divided
by the scale, exactly as the rule generator does.

That closed form assumes the windows held only steady, error-free traffic at the
rate that follows the injection. A real target's windows (and a lab's, right after
an earlier load test) hold whatever traffic really came, unevenly: ``held_crossing``
and ``first_to_fire_held`` start from the traffic profile up to the injection
instead (events and errors per stretch of time, queried by the caller; this module
stays free of I/O), let the old traffic slide out of each window as it really
arrived, and apply the fault's error rate to the traffic that really came after the
injection (a load still ramping up, or slowed by a latency fault, brings fewer errors
early than a steady rate would).

A traffic-aware SLO's threshold moves with the traffic: the condition holds when the
long window holds more than ``c × (1 − objective)`` of the period's events as errors,
and the short window's error ratio exceeds ``N_period / N_long × c × (1 − objective)``
(the long window's count, as in the rules). ``held_crossing_traffic_aware`` also lets
the period's events move (``PeriodHeld``: a lab younger than its scaled period holds
its whole traffic in it, and loses none), and the observed theory reads the period's
and long window's events at every measured time (``observed_threshold``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from tokenslo.core import burnrate
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, BurnWindow, Timeslices
from tokenslo.core.timescale import scaled
from tokenslo.errors import InputError


@dataclass(frozen=True)
class Expectation:
    """When one alert condition should fire (seconds after the fault started)."""

    long_window: str  # nominal, as in the alert's label
    short_window: str
    factor: float
    for_seconds: float  # scaled
    theory_seconds: float | None  # None: this error rate never fires it

    def to_json(self) -> dict:
        return {
            "long_window": self.long_window,
            "short_window": self.short_window,
            "burn_factor": self.factor,
            "for_seconds": round(self.for_seconds, 3),
            "theory_seconds": None
            if self.theory_seconds is None
            else round(self.theory_seconds, 3),
        }

    def fires_after(self) -> float:
        """``theory_seconds`` of a condition known to fire (``first_to_fire`` and
        ``first_to_fire_held`` pick only those)."""
        if self.theory_seconds is None:
            raise ValueError(f"the {self.long_window}/{self.short_window} condition never fires")
        return self.theory_seconds


def conditions(slo: SLO, severity: str, long_window: str = "") -> list[BurnWindow]:
    """The SLO's alert conditions of ``severity`` (optionally only the one on ``long_window``)."""
    return [
        w
        for w in burnrate.policy_for(slo)
        if w.severity == severity
        and (not long_window or format_duration(w.long_window) == long_window)
    ]


def expectation(slo: SLO, window: BurnWindow, error_rate: float, time_scale: float) -> Expectation:
    factor = burnrate.factor_of(slo, window)
    crossings = [
        burnrate.detection_time(factor, slo.objective, scaled(span, time_scale), error_rate)
        for span in (window.long_window, window.short_window)
    ]
    return _from_crossings(window, factor, crossings, time_scale)


def _from_crossings(
    window: BurnWindow, factor: float, crossings: list[float | None], time_scale: float
) -> Expectation:
    """The condition holds once both windows crossed; it fires ``for`` later."""
    for_seconds = scaled(window.for_, time_scale)
    theory = None
    crossed = [t for t in crossings if t is not None]
    if len(crossed) == len(crossings):
        theory = max(crossed) + for_seconds
    return Expectation(
        long_window=format_duration(window.long_window),
        short_window=format_duration(window.short_window),
        factor=factor,
        for_seconds=for_seconds,
        theory_seconds=theory,
    )


def refuse_timeslices(slo: SLO, what: str) -> None:
    """``what`` follows event error ratios; a timeslices SLO's alerts follow its slice
    judgements, which it does not model: bad input rather than a wrong expectation."""
    if slo.timeslices is not None:
        raise InputError(
            f"SLO {slo.name!r} uses timeslices budgeting: {what} is computed for event"
            " ratios only; pick an SLO without timeslices",
            field="slo",
        )


def first_to_fire(
    slo: SLO, severity: str, error_rate: float, time_scale: float, long_window: str = ""
) -> Expectation | None:
    """The condition expected to fire first; None when none of them would fire."""
    make = expectation if slo.timeslices is None else slice_expectation
    expected = [
        make(slo, w, error_rate, time_scale) for w in conditions(slo, severity, long_window)
    ]
    return _earliest(expected)


# ---------------------------------------------------------------- timeslices SLOs


def slice_expectation(
    slo: SLO, window: BurnWindow, error_rate: float, time_scale: float
) -> Expectation:
    """``expectation`` of a timeslices SLO: each window (scaled, as the slice) crosses
    when its slice judgements, healthy before the injection, average above the
    threshold (``slice_crossing``)."""
    assert slo.timeslices is not None
    threshold = burnrate.threshold_of(slo, window)
    slice_ = scaled(slo.timeslices.window, time_scale)
    crossings = [
        slice_crossing(slo.timeslices, slice_, scaled(span, time_scale), threshold, error_rate)
        for span in (window.long_window, window.short_window)
    ]
    return _from_crossings(window, burnrate.factor_of(slo, window), crossings, time_scale)


def slice_crossing(
    timeslices: Timeslices, slice_: float, window: float, threshold: float, error_rate: float
) -> float | None:
    """Seconds after the injection of a steady ``error_rate`` until ``window``'s slice
    judgements (all healthy before) average above ``threshold``; None if never.

    The rules judge the last ``slice_`` seconds at every evaluation, so the window's
    average is, up to one evaluation, the mean over the last ``window`` seconds of the
    judgement of the slice ending then. That slice holds errors for ``min(t, slice_)`` of
    its length ``t`` after the injection: its error ratio is ``error_rate × min(t,
    slice_) / slice_``. Good slices: it turns bad (1) once that exceeds the slice's
    allowed error ratio ``a``, at ``t_b = a × slice_ / error_rate``, and the window's bad
    share ``(t − t_b) / window`` crosses at ``t_b + threshold × window``. Mean ratio: the
    judgement is the ratio itself, and the window's sum of it crosses
    ``threshold × window`` (solved on its integral)."""
    if timeslices.mean_ratio:
        return _mean_ratio_crossing(slice_, window, threshold, error_rate)
    allowed = timeslices.allowed_error_ratio
    if error_rate <= allowed or threshold >= 1:
        return None
    return allowed * slice_ / error_rate + threshold * window


def _mean_ratio_crossing(
    slice_: float, window: float, threshold: float, error_rate: float
) -> float | None:
    """``slice_crossing`` of a mean-ratio SLO: the judgement rises linearly to
    ``error_rate`` over one slice, so the window's sum of it is piecewise quadratic and
    nondecreasing; it reaches ``error_rate × window`` one slice after the window has
    slid past the injection, so a threshold below ``error_rate`` is crossed by then."""
    if error_rate <= threshold:
        return None

    def area(t: float) -> float:  # judgement summed over the first t seconds
        if t <= 0:
            return 0.0
        if t <= slice_:
            return error_rate * t * t / (2 * slice_)
        return error_rate * (t - slice_ / 2)

    target = threshold * window
    lo, hi = 0.0, window + slice_
    for _ in range(100):  # bisection: the sum is monotone, 100 halvings reach float precision
        mid = (lo + hi) / 2
        if area(mid) - area(mid - window) > target:
            hi = mid
        else:
            lo = mid
    return hi


def _earliest(expected: list[Expectation]) -> Expectation | None:
    firing = [e for e in expected if e.theory_seconds is not None]
    return min(firing, key=Expectation.fires_after) if firing else None


def resolution_seconds(
    slo: SLO,
    long_window: str,
    error_rate: float,
    incident_seconds: float,
    time_scale: float,
    severity: str = "page",
) -> float | None:
    """Seconds after recovery until the condition on ``long_window`` stops holding."""
    refuse_timeslices(slo, "the resolution time")
    found = conditions(slo, severity, long_window)
    if not found:
        return None
    window = found[0]
    return burnrate.pair_reset_time(
        burnrate.factor_of(slo, window),
        slo.objective,
        scaled(window.long_window, time_scale),
        scaled(window.short_window, time_scale),
        error_rate,
        incident_seconds,
    )


@dataclass(frozen=True)
class Held:
    """What one stretch of an alert window held at the injection (counts, not rates)."""

    seconds: float
    events: float
    errors: float


def window_of(profile: Sequence[Held], seconds: float) -> list[Held]:
    """The last ``seconds`` of a traffic profile (stretches oldest first, the newest
    ending at the injection), a stretch cut short keeping its share of the counts
    (traffic taken as even within a stretch); padded with an empty stretch at the
    start when the profile is shorter (before its first sample there was no traffic)."""
    out: list[Held] = []
    needed = seconds
    for seg in reversed(profile):
        if needed <= 0:
            break
        if seg.seconds <= needed:
            out.append(seg)
        else:
            share = needed / seg.seconds
            out.append(Held(needed, seg.events * share, seg.errors * share))
        needed -= min(needed, seg.seconds)
    if needed > 0:
        out.append(Held(needed, 0.0, 0.0))
    return list(reversed(out))


def _rate(segments: Sequence[Held]) -> float:
    seconds = sum(s.seconds for s in segments)
    return sum(s.events for s in segments) / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class _Piece:
    """A stretch of the timeline (seconds from the injection) with even traffic:
    events and errors per second."""

    start: float
    end: float
    events: float
    errors: float


def _timeline(
    before: Sequence[Held],
    after: Sequence[Held],
    event_rate: float,
    error_rate: float,
    horizon: float,
) -> list[_Piece]:
    """The traffic around the injection: ``before`` as it was held (errors included),
    ``after`` as it really came with a share ``error_rate`` of it errors, and from the
    end of ``after`` up to ``horizon`` ``event_rate`` events/s at the same share."""
    pieces: list[_Piece] = []
    at = -sum(seg.seconds for seg in before)
    for seg, share in [(s, None) for s in before] + [(s, error_rate) for s in after]:
        if seg.seconds > 0:
            errors = seg.errors if share is None else share * seg.events
            pieces.append(
                _Piece(at, at + seg.seconds, seg.events / seg.seconds, errors / seg.seconds)
            )
        at += seg.seconds
    at = max(at, 0.0)
    if at < horizon:
        pieces.append(_Piece(at, horizon, event_rate, error_rate * event_rate))
    return pieces


def _content(pieces: Sequence[_Piece], lo: float, hi: float) -> tuple[float, float]:
    """(events, errors) that arrived between ``lo`` and ``hi``."""
    events = errors = 0.0
    for piece in pieces:
        overlap = max(0.0, min(hi, piece.end) - max(lo, piece.start))
        events += piece.events * overlap
        errors += piece.errors * overlap
    return events, errors


def _first_positive(value: Callable[[float], float], bounds: Sequence[float]) -> float | None:
    """First time in ``bounds[0] .. bounds[-1]`` at which ``value`` is above 0, for a
    ``value`` that is at most quadratic between consecutive ``bounds`` (products of two
    piecewise linear window contents): each piece is fitted exactly through three points
    and solved; None when it stays at or below 0."""
    if value(bounds[0]) > 0:
        return bounds[0]
    for lo, hi in pairwise(bounds):
        f0, fm, fh = value(lo), value((lo + hi) / 2), value(hi)
        if max(f0, fm, fh) <= 0 and fm <= (f0 + fh) / 2:
            continue  # at or below 0 at both ends and not bulging above: none inside
        found = _first_root_up(f0, fm, fh, hi - lo)
        if found is not None:
            return lo + found
    return None


def _first_root_up(f0: float, fm: float, fh: float, h: float) -> float | None:
    """Smallest ``u`` in (0, h] where the quadratic through (0, f0), (h/2, fm), (h, fh)
    turns positive (``f0 <= 0``); None when it stays at or below 0 there."""
    a = 2 * (fh - 2 * fm + f0) / (h * h)
    b = (4 * fm - 3 * f0 - fh) / h
    scale = max(abs(f0), abs(fm), abs(fh), 1e-300)
    if abs(a) * h * h <= 1e-12 * scale:  # linear
        return h * -f0 / (fh - f0) if fh > 0 else None
    disc = b * b - 4 * a * f0
    if disc < 0:
        return None
    root = math.sqrt(disc)
    slack = 1e-9 * h
    for u in sorted(((-b - root) / (2 * a), (-b + root) / (2 * a))):
        if -slack <= u <= h + slack and 2 * a * u + b > 0:
            return min(max(u, 0.0), h)
    return h * -f0 / (fh - f0) if fh > 0 else None  # rounding hid the root


def held_crossing(
    threshold: float,
    segments: Sequence[Held],
    event_rate: float,
    error_rate: float,
    after: Sequence[Held] = (),
) -> float | None:
    """Seconds after the injection until a window's error ratio exceeds ``threshold``.

    ``segments`` are what the window held at the injection, oldest first, covering the
    whole window. From the injection on the traffic is ``after`` (stretches as they
    really came, when known) and then ``event_rate`` events/s, a share ``error_rate``
    of it errors: the fault's error rate, applied to the traffic that really arrived
    (a latency fault slows paced clients; a load still ramping up brings its errors
    late). The window's content is piecewise linear in time, with kinks where a
    stretch boundary enters or leaves it, so each piece is solved exactly; once the
    whole window has slid past the injection the ratio is ``error_rate`` for good,
    so None when it has not crossed by then.
    """
    width = sum(seg.seconds for seg in segments)
    pieces = _timeline(segments, after, event_rate, error_rate, width)

    def excess(at: float) -> float:
        events, errors = _content(pieces, at - width, at)
        return errors - threshold * events

    return _first_positive(excess, _bounds(pieces, (width,), width))


def _bounds(pieces: Sequence[_Piece], widths: Sequence[float], horizon: float) -> list[float]:
    """0, ``horizon`` and every time in between at which a stretch boundary enters or
    leaves a window of one of ``widths``: where the window contents kink."""
    edges = {edge for p in pieces for edge in (p.start, p.end)}
    kinks = {edge + shift for edge in edges for shift in (0.0, *widths)}
    return sorted({0.0, horizon} | {k for k in kinks if 0.0 < k < horizon})


@dataclass(frozen=True)
class PeriodHeld:
    """What the (scaled) SLO period held at the injection, for a traffic-aware threshold:
    its ``events``, and its oldest stretches (``leaving``, oldest first, from the period's
    start on), which slide out of it after the injection. A lab younger than its period
    loses nothing: ``leaving`` empty."""

    events: float
    leaving: Sequence[Held] = ()


def held_crossing_traffic_aware(
    share: float,
    segments: Sequence[Held],
    long_segments: Sequence[Held],
    period: PeriodHeld,
    event_rate: float,
    error_rate: float,
    after: Sequence[Held] = (),
) -> float | None:
    """``held_crossing`` against the moving threshold of a traffic-aware condition:
    the window (``segments``) is over it when ``errors × N_long > share × N_period ×
    events``, ``share`` = c × (1 − objective), ``N_long`` the events in the condition's
    long window (``long_segments`` at the injection) and ``N_period`` the period's
    (``period``), both as the traffic goes on (the rules' ``tokenslo:slo_traffic_ratio``,
    which the short window shares with the long one). Each window's content is piecewise
    linear, so the condition is piecewise quadratic and solved exactly per piece, up to
    the long window's width (after it both windows hold only new traffic; a later
    crossing through the period losing old traffic is not predicted: None)."""
    width = sum(seg.seconds for seg in segments)
    long_width = sum(seg.seconds for seg in long_segments)
    pieces = _timeline(long_segments, after, event_rate, error_rate, long_width)
    leaving = _timeline(period.leaving, (), 0.0, 0.0, 0.0)
    shift = sum(seg.seconds for seg in period.leaving)
    lost = [_Piece(p.start + shift, p.end + shift, p.events, p.errors) for p in leaving]

    def excess(at: float) -> float:
        events, errors = _content(pieces, at - width, at)
        n_long = _content(pieces, at - long_width, at)[0]
        n_period = period.events + _content(pieces, 0.0, at)[0] - _content(lost, 0.0, at)[0]
        return errors * n_long - share * n_period * events

    return _first_positive(excess, _bounds(pieces + lost, (width, long_width), long_width))


def held_expectation(
    slo: SLO,
    window: BurnWindow,
    error_rate: float,
    time_scale: float,
    profile: Sequence[Held],
    rate: float | None = None,
    after: Sequence[Held] = (),
    period: PeriodHeld | None = None,
) -> Expectation:
    """``expectation`` from the traffic ``profile`` up to the injection: each of the
    condition's windows (scaled) starts from the part of the profile it covers; the
    traffic that follows is ``after`` as it came, then ``rate`` events/s (default: the
    short window's before the injection). A traffic-aware SLO's threshold moves with the
    events of the long window and of the SLO ``period`` (required for such an SLO)."""
    factor = burnrate.factor_of(slo, window)
    long = window_of(profile, scaled(window.long_window, time_scale))
    short = window_of(profile, scaled(window.short_window, time_scale))
    rate = _rate(short) if rate is None else rate
    if slo.alerting.traffic_aware:
        if period is None:
            raise ValueError(f"SLO {slo.name!r} is traffic-aware: its period's events are needed")
        share = window.budget_fraction * slo.error_budget
        crossings = [
            held_crossing_traffic_aware(share, span, long, period, rate, error_rate, after)
            for span in (long, short)
        ]
    else:
        threshold = burnrate.threshold_of(slo, window)
        crossings = [
            held_crossing(threshold, long, rate, error_rate, after),
            held_crossing(threshold, short, rate, error_rate, after),
        ]
    return _from_crossings(window, factor, crossings, time_scale)


def first_to_fire_held(
    slo: SLO,
    severity: str,
    error_rate: float,
    time_scale: float,
    profile: Sequence[Held],
    long_window: str = "",
    rate: float | None = None,
    after: Sequence[Held] = (),
    period: PeriodHeld | None = None,
) -> Expectation | None:
    """``first_to_fire`` from the traffic ``profile`` up to the injection (stretches of
    events and errors, oldest first, covering at least the longest window), the traffic
    ``after`` it as it came (stretches, oldest first) and the event ``rate`` beyond
    that (default: each short window's rate before the injection); ``period``: what the
    SLO period held, for a traffic-aware SLO."""
    refuse_timeslices(slo, "the alert time from the traffic held at the injection")
    expected = [
        held_expectation(slo, w, error_rate, time_scale, profile, rate, after, period)
        for w in conditions(slo, severity, long_window)
    ]
    return _earliest(expected)


Series = Mapping[float, tuple[float, float]]  # seconds after the injection → (events, errors)


def observed_crossing(
    threshold: float | Callable[[float], float], windows: Sequence[Series]
) -> float | None:
    """First time (seconds after the injection) at which every window's error ratio, as
    the SLI's own queries measured it (``{t: (events, errors)}`` per window), exceeds
    ``threshold`` (a number, or the threshold at each time); None when that never
    happened. Counts from scrapes are estimates (``increase`` extrapolates, paced
    clients arrive in bursts): near the threshold a slowly rising ratio moves by a few
    per cent per second, so a prediction from counts misses by seconds where the alert
    rule, reading the same series, does not."""
    at_time = threshold if callable(threshold) else (lambda _at: threshold)
    return _first_time(at_time, windows, holding=True)


def _first_time(
    threshold: Callable[[float], float], windows: Sequence[Series], holding: bool
) -> float | None:
    """First time measured in every window at which the condition (every window's error
    ratio over ``threshold`` then) holds, or with ``holding`` False no longer holds."""
    times = sorted(set.intersection(*(set(w) for w in windows))) if windows else []
    for at in times:
        line = threshold(at)
        if all(_exceeds(line, *w[at]) for w in windows) == holding:
            return at
    return None


def _exceeds(threshold: float, events: float, errors: float) -> bool:
    return events > 0 and errors / events > threshold


def observed_threshold(
    slo: SLO, window: BurnWindow, long: Series, period: Series | None
) -> Callable[[float], float]:
    """The condition's threshold at each measured time: a constant for a static SLO;
    for a traffic-aware one ``burnrate.threshold_at`` from the period's and the long
    window's events measured then (unreachable where either was not measured)."""
    if not slo.alerting.traffic_aware:
        static = burnrate.threshold_of(slo, window)
        return lambda _at: static
    counted = period or {}

    def at_time(at: float) -> float:
        n_period = counted[at][0] if at in counted else None
        n_long = long[at][0] if at in long else None
        return burnrate.threshold_at(slo, window, n_period, n_long)

    return at_time


def observed_expectation(
    slo: SLO,
    window: BurnWindow,
    time_scale: float,
    long: Series,
    short: Series,
    period: Series | None = None,
) -> Expectation:
    """``expectation`` of one condition from its two windows as measured after the
    injection: both over the threshold, then ``for``. A traffic-aware SLO's threshold
    moves with the events measured over its (scaled) ``period`` and its long window."""
    threshold = observed_threshold(slo, window, long, period)
    crossing = observed_crossing(threshold, [long, short])
    return _from_crossings(window, burnrate.factor_of(slo, window), [crossing], time_scale)


def observed_reset(
    slo: SLO, window: BurnWindow, long: Series, short: Series, period: Series | None = None
) -> float | None:
    """First time (seconds after the fault cleared) at which the condition no longer held
    in the SLI's own data (either window at or under the threshold); None when it held
    at every measured time."""
    threshold = observed_threshold(slo, window, long, period)
    return _first_time(threshold, [long, short], holding=False)


def slack_seconds(
    scrape_interval: float, evaluation_interval: float, poll_interval: float
) -> float:
    """Lag between the errors and what the probe sees: the errors wait for a scrape, the
    rule sees them at its next evaluation, ``for`` is checked at evaluations only (one
    more interval), and the probe polls."""
    return 2 * scrape_interval + 2 * evaluation_interval + poll_interval
