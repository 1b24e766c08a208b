"""The game day's view of the SLOs between experiments, through the engine and
Prometheus: budgets left and consumed, burn-rate alerts, and waiting for recovery.
"""

from __future__ import annotations

import time

from tokenslo.chaos import targets
from tokenslo.core import burnrate
from tokenslo.engine.evaluator import evaluate, evaluate_window, window_burn
from tokenslo.gameday.state import GameDay
from tokenslo.prometheus.client import PromClient
from tokenslo.rules import conventions as conv
from tokenslo.waiting import wait_until

POLL_SECONDS = 1.0


def prom_client(gd: GameDay) -> PromClient:
    assert gd.reached is not None
    return PromClient(gd.reached.urls["prometheus"])


def statuses(gd: GameDay):
    with prom_client(gd) as client:
        return evaluate(gd.scaled, client)


def budgets(gd: GameDay) -> dict[str, float | None]:
    """Error budget left per SLO over its (time-scaled) period, from the engine."""
    return {s.name: s.error_budget_remaining for s in statuses(gd)}


def budgets_consumed(gd: GameDay, start: float, end: float) -> dict[str, float | None]:
    """Per SLO, the share of its (time-scaled) period's budget burnt over [start, end]."""
    span = max(end - start, 1.0)
    with prom_client(gd) as client:
        counts = evaluate_window(gd.scaled, client, span, end)
    consumed: dict[str, float | None] = {}
    for slo in gd.scaled:
        burn = window_burn(slo, counts.get(slo.name))
        consumed[slo.name] = (
            None if burn is None else burnrate.budget_consumed(burn, span, slo.window)
        )
    return consumed


def _burn_alerts(gd: GameDay) -> list[dict]:
    assert gd.reached is not None
    names = {s.name for s in gd.slos}
    return [
        a
        for a in targets.active_alerts(gd.reached.urls["prometheus"], conv.BURN_ALERT)
        if a.get("labels", {}).get(conv.SLO_LABEL) in names
    ]


def wait_recovered(gd: GameDay, timeout: float) -> float | None:
    """When no SLO pages any more — no page alert pending or firing in Prometheus and no
    page condition holding in the engine — or None after ``timeout``. Tickets on long
    windows may outlast a short incident (in compressed time too) and do not block."""

    def recovered_at() -> float | None:
        paging = [
            a for a in _burn_alerts(gd) if a.get("labels", {}).get(conv.SEVERITY_LABEL) == "page"
        ]
        if not paging and not any(s.state == "page" for s in statuses(gd)):
            return time.time()
        return None

    try:
        return wait_until(recovered_at, timeout, POLL_SECONDS, "recovery")
    except TimeoutError:
        return None


def count_firing(gd: GameDay) -> int | None:
    """Distinct burn-rate alerts seen firing so far (for the progress line)."""
    if gd.reached is None:
        return None
    for alert in _burn_alerts(gd):
        labels = alert.get("labels", {})
        if alert.get("state") == "firing":
            gd.seen_firing.add(
                (
                    labels.get(conv.SLO_LABEL, ""),
                    labels.get(conv.SEVERITY_LABEL, ""),
                    labels.get(conv.LONG_WINDOW_LABEL, ""),
                )
            )
    return len(gd.seen_firing)
