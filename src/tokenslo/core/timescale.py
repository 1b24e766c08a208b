"""Compressed time for lab rehearsals: what a time scale N means, in one place.

A rehearsal cannot wait an hour for a 1h alert window, so the lab runs its rules with
every SLO window, every ``for`` and the evaluation interval divided by N, while rule
names, window labels and reports keep the nominal windows of the SLO file. The rule
generator, the reports, chaos theory and the game day all convert between nominal and
scaled seconds here, so they cannot disagree on the direction or the rounding. Burn
factors depend only on ratios of windows, so scaling leaves them unchanged. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from tokenslo.core import burnrate
from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO
from tokenslo.errors import InputError

SCALE_DIGITS = 6  # a scale read back from loaded rules is rounded to this many decimals


def scaled(seconds: float, time_scale: float) -> float:
    """Nominal seconds as a rehearsal at ``time_scale`` runs them (1h at 60 → 60 s)."""
    return seconds / time_scale


def nominal(seconds: float, time_scale: float) -> float:
    """Scaled seconds as the SLO file spells them (60 s at 60 → 1h)."""
    return seconds * time_scale


def scaled_duration(seconds: float, time_scale: float) -> str:
    """``scaled`` as a Prometheus duration, the spelling of a scaled rule's windows."""
    return format_duration(scaled(seconds, time_scale))


def nominal_duration(seconds: float, time_scale: float) -> str:
    """``nominal`` as a Prometheus duration (``1m`` at scale 60 → ``1h``), for reports."""
    return format_duration(nominal(seconds, time_scale))


def scale_between(nominal_seconds: float, scaled_seconds: float) -> float:
    """The time scale that turned ``nominal_seconds`` into ``scaled_seconds``.

    Rounded, since the scaled side comes back from Prometheus as float seconds.
    """
    return round(nominal_seconds / scaled_seconds, SCALE_DIGITS)


def check_time_scale(value: object, given: object = None) -> float:
    """``value`` as a float when it is a positive finite number; InputError otherwise.

    ``given`` is what the user typed (``value`` itself when omitted), so the message
    quotes their spelling rather than a parsed number.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        shown = value if given is None else given
        raise InputError(f"must be a positive number, got {shown!r}", field="--time-scale")
    return float(value)


def scale_slo(slo: SLO, time_scale: float) -> SLO:
    """``slo`` with its period, every alert window and ``for`` divided by ``time_scale``,
    as its rules run in a rehearsal at that scale (the policy in force becomes explicit)."""
    if time_scale == 1:
        return slo
    policy = tuple(
        replace(
            bw,
            long_window=scaled(bw.long_window, time_scale),
            short_window=scaled(bw.short_window, time_scale),
            for_=scaled(bw.for_, time_scale),
        )
        for bw in burnrate.policy_for(slo)
    )
    alerting = replace(slo.alerting, policy=policy)
    return replace(slo, window=scaled(slo.window, time_scale), alerting=alerting)


@dataclass(frozen=True)
class Scale:
    """A time scale carried through rule generation: durations come out already scaled."""

    factor: float = 1.0

    def duration(self, seconds: float) -> str:
        """Nominal ``seconds`` as the scaled Prometheus duration a rule uses."""
        return scaled_duration(seconds, self.factor)

    def interval(self, base: float, floor: float) -> str:
        """A scaled evaluation interval, never below ``floor`` seconds: Prometheus cannot
        usefully evaluate faster than it scrapes, whatever the scale."""
        return format_duration(max(floor, scaled(base, self.factor)))
