"""The load-test gate (pure): SLOs + exact per-request results → checks → verdict.

Only SLOs with ``loadtest.requests`` are gated. Per SLO:

* **client** check, from the recorder: an events SLO is judged on availability
  (share of its requests that did not fail ≥ objective); a latency SLO on latency
  (share of its *successful* requests at or under ``sli.threshold`` ≥ objective —
  failures are judged by availability, and a fast error must not look fast).
* **server** check (with ``--prometheus``): the SLO's burn rate over the test
  window, from the engine; above 1 the test spent budget faster than the SLO
  allows, so it fails.

Minimum-sample rule: a check can pass only with at least ``min_requests(slo)``
requests — ``ceil(3 / (1 − objective))`` unless ``loadtest.min_requests`` says
otherwise. By the rule of three, zero failures in n requests only bounds the true
failure ratio below 3/n (95% confidence), so fewer requests cannot show that the
objective holds. Such a check is ``insufficient_data`` — unless its failures alone
make a breach certain whatever the sample size (``binomial.breach_certain``: that many
failures are less than 5% likely if the true error rate were the budget), which fails it.

Scope: only SLOs that name a request the scenario sends are judged (``in_scope``); the
others are listed as not gated, with why, and never make the run exit 3. Timeslices SLOs
are never judged (``TIMESLICES_NOT_GATED``): their objective is a share of good slices
over the SLO window, which a share of good requests in one test cannot show.

Every check carries its reasons: the three most common failures of its requests
(``401 invalid_client ×1555``), shown wherever a check is not passed.

Verdict: any ``fail`` → exit 1; else any ``insufficient_data``/``no_data`` → exit 3
(no data never passes); else 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

from tokenslo.core.durations import format_duration
from tokenslo.core.model import SLO, LatencySLI
from tokenslo.engine.evaluator import WindowCounts, window_burn
from tokenslo.errors import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE
from tokenslo.load.binomial import ALPHA, breach_certain
from tokenslo.load.recorder import NameStats, Recorder

State = Literal["pass", "fail", "insufficient_data", "no_data"]
Side = Literal["client", "server"]
SCALE = 10**12  # budgets are rounded to 12 digits (core.model.budget_of): compare as integers

RULE = (
    "a check passes only with at least ceil(3 / (1 - objective)) requests "
    "(rule of three: zero failures in n requests bounds the failure ratio below 3/n "
    "at 95% confidence), unless the SLO sets loadtest.min_requests"
)


TIMESLICES_NOT_GATED = (
    "timeslices budgeting: its objective is a share of good time slices (or the mean of"
    " their ratios) over the SLO window, which a load test's share of good requests"
    " cannot judge"
)


@dataclass(frozen=True)
class Check:
    slo: str
    service: str
    side: Side
    kind: str  # availability | latency | burn_rate
    objective: float  # percent
    requests: tuple[str, ...]
    state: State
    message: str
    count: int = 0  # requests (client) judged
    bad: int = 0  # failed (availability) or slower than the threshold (latency)
    min_requests: int | None = None
    measured: float | None = None  # client: good ratio; server: burn rate
    reasons: tuple[tuple[str, int], ...] = ()  # most common failures of its requests

    @property
    def name(self) -> str:
        return f"{self.slo} {self.side}"

    @property
    def detail(self) -> str:
        """The message plus the failures behind it: what a failed check shows everywhere."""
        text = reasons_text(self.reasons)
        if not text or text in self.message:
            return self.message
        return f"{self.message}; failures: {reasons_text(self.reasons)}"


TOP_REASONS = 3


def top_reasons(stats: NameStats) -> tuple[tuple[str, int], ...]:
    return tuple(stats.errors.most_common(TOP_REASONS))


def reasons_text(reasons: Sequence[tuple[str, int]]) -> str:
    """``401 invalid_client ×1555, 503 ×3`` (messages from ``protocol.judge``: no token values)."""
    return ", ".join(f"{reason} ×{count}" for reason, count in reasons)


def min_requests(slo: SLO) -> int:
    """Requests a client check needs before it can pass (see the module docstring)."""
    if slo.loadtest_min_requests is not None:
        return slo.loadtest_min_requests
    return math.ceil(round(3.0 / slo.error_budget, 6))


def within_budget(bad: int, total: int, slo: SLO) -> bool:
    """bad / total ≤ 1 − objective, exactly (no float rounding at the boundary)."""
    return bad * SCALE <= round(slo.error_budget * SCALE) * total


def gated(slos: Sequence[SLO]) -> list[SLO]:
    return [slo for slo in slos if slo.loadtest]


@dataclass(frozen=True)
class Scope:
    """Which request names a run sends, and why it sends none of the others."""

    scenario: str
    sent: frozenset[str]
    unsent: dict[str, str]  # request name → why the run sent none


@dataclass(frozen=True)
class NotGated:
    slo: str
    service: str
    reason: str


def in_scope(slos: Sequence[SLO], scope: Scope | None) -> tuple[list[SLO], list[NotGated]]:
    """SLOs to judge (they name a request the run sends) and the others, with why not."""
    judged, skipped = [], []
    for slo in gated(slos):
        if slo.timeslices is not None:
            skipped.append(NotGated(slo.name, slo.service, TIMESLICES_NOT_GATED))
            continue
        if scope is None or scope.sent.intersection(slo.loadtest):
            judged.append(slo)
            continue
        why = "; ".join(scope.unsent.get(name, _not_sent(scope, name)) for name in slo.loadtest)
        skipped.append(NotGated(slo.name, slo.service, why))
    return judged, skipped


def _not_sent(scope: Scope, name: str) -> str:
    return f"scenario {scope.scenario} sends no {name} requests"


def _combined(slo: SLO, recorder: Recorder) -> NameStats:
    total = NameStats()
    for name in slo.loadtest:
        if name in recorder.names:
            total.merge(recorder.names[name])
    return total


class _ClientBase(TypedDict):
    """What every client-side check of one SLO says, whatever its state: typed, so that
    ``Check(**base, ...)`` is checked field by field."""

    slo: str
    service: str
    side: Side
    kind: str
    objective: float
    requests: tuple[str, ...]
    count: int
    bad: int
    min_requests: int | None
    reasons: tuple[tuple[str, int], ...]


def client_check(slo: SLO, recorder: Recorder) -> Check:
    stats = _combined(slo, recorder)
    needed = min_requests(slo)
    if isinstance(slo.sli, LatencySLI):
        kind, threshold = "latency", slo.sli.threshold
        count = stats.successes
        bad = count - stats.at_or_under(threshold)
        what = f"at or under {format_duration(threshold)}"
    else:
        kind, count, bad, what = "availability", stats.requests, stats.failures, "succeeded"
    base = _ClientBase(
        slo=slo.name,
        service=slo.service,
        side="client",
        kind=kind,
        objective=slo.objective,
        requests=slo.loadtest,
        count=count,
        bad=bad,
        min_requests=needed,
        reasons=top_reasons(stats),
    )
    names = ", ".join(slo.loadtest)
    if count == 0 and stats.requests:
        message = (
            f"all {stats.requests} requests named {names} failed "
            f"({reasons_text(top_reasons(stats))}): no successful request to time"
        )
        return Check(**base, state="no_data", message=message)
    if count == 0:
        why = f"no {kind} data: no requests named {names}"
        if recorder.stopped:
            why += " before the run stopped early"
        return Check(**base, state="no_data", message=why)
    good = (count - bad) / count
    measured = f"{good * 100:.3f}% {what} ({bad} of {count} not)"
    objective = f"objective {slo.objective:g}%"
    if count < needed and breach_certain(bad, count, slo.error_budget):
        certain = (
            f"{measured} < {objective}: a breach whatever the sample size "
            f"(≥ {bad} of {count} is < {ALPHA:.0%} likely "
            f"at a {slo.error_budget * 100:g}% error rate)"
        )
        return Check(**base, state="fail", measured=good, message=certain)
    if count < needed:
        return Check(
            **base,
            state="insufficient_data",
            measured=good,
            message=f"{count} requests < {needed} needed to show {objective} (rule of three)",
        )
    if not within_budget(bad, count, slo):
        return Check(**base, state="fail", measured=good, message=f"{measured} < {objective}")
    return Check(**base, state="pass", measured=good, message=f"{measured} ≥ {objective}")


def client_checks(slos: Sequence[SLO], recorder: Recorder) -> list[Check]:
    return [client_check(slo, recorder) for slo in gated(slos)]


def _server_base(slo: SLO, recorder: Recorder | None = None) -> dict:
    """What every server-side check of ``slo`` says about itself (with the failures the
    client saw on the same requests: the server's metrics carry no reasons)."""
    return dict(
        slo=slo.name,
        service=slo.service,
        side="server",
        kind="burn_rate",
        objective=slo.objective,
        requests=slo.loadtest,
        reasons=top_reasons(_combined(slo, recorder)) if recorder else (),
    )


def server_check(
    slo: SLO, counts: WindowCounts | None, window: float, recorder: Recorder | None = None
) -> Check:
    span = format_duration(window)
    base = _server_base(slo, recorder)
    if counts is None or counts.total is None:
        return Check(**base, state="no_data", message=f"no data over the test window ({span})")
    burn = window_burn(slo, counts)
    if burn is None:
        return Check(**base, state="no_data", message=f"no traffic over the test window ({span})")
    total = int(round(counts.total))
    text = f"burn rate {burn:.3g} over {span}"
    if burn > 1.0:
        return Check(**base, state="fail", measured=burn, count=total, message=f"{text} > 1")
    return Check(**base, state="pass", measured=burn, count=total, message=f"{text} ≤ 1")


def server_checks(
    slos: Sequence[SLO],
    counts: dict[str, WindowCounts | None],
    window: float,
    recorder: Recorder | None = None,
) -> list[Check]:
    return [server_check(slo, counts.get(slo.name), window, recorder) for slo in gated(slos)]


def unreachable_checks(slos: Sequence[SLO], reason: str) -> list[Check]:
    """Server checks when Prometheus could not be asked: unknown, never passed."""
    return [
        Check(**_server_base(slo), state="no_data", message=f"Prometheus unreachable: {reason}")
        for slo in gated(slos)
    ]


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    result: str  # passed | failed | unknown
    reason: str


def verdict(checks: Sequence[Check], not_gated: Sequence[NotGated] = ()) -> Verdict:
    if not checks and not_gated:
        why = "no SLO this run can judge: nothing to gate"
        return Verdict(EXIT_UNAVAILABLE, "unknown", why)
    if not checks:
        return Verdict(EXIT_UNAVAILABLE, "unknown", "no SLO has loadtest.requests: nothing to gate")
    failed = [c.name for c in checks if c.state == "fail"]
    if failed:
        return Verdict(EXIT_FAILED, "failed", "objective breached: " + ", ".join(failed))
    unknown = [f"{c.name} ({c.state})" for c in checks if c.state != "pass"]
    if unknown:
        return Verdict(EXIT_UNAVAILABLE, "unknown", "cannot judge: " + ", ".join(unknown))
    return Verdict(EXIT_OK, "passed", f"all {len(checks)} checks met their objectives")
