"""One experiment of the game day: run it through the chaos runner, then read what it
left (its journal and run record) into an ``ExperimentRun``; and the expected detection
times its alerts are judged against when a journal holds no measurement.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from tokenslo.chaos import actions, runner, runstate, targets, theory
from tokenslo.errors import TokensloError
from tokenslo.gameday import evaluate as ev
from tokenslo.gameday import timeline as tl
from tokenslo.gameday.recovery import budgets
from tokenslo.gameday.report_dir import partial_dir, write_text
from tokenslo.gameday.state import GameDay, Prepared

PROBE_POLL = 0.25  # the chaos probes' poll interval (part of their slack)


def detection_theory(gd: GameDay) -> dict[str, tuple[float, float]]:
    """Expected detection time (full outage) and slack per expected alert: the fallback
    when a journal holds no measurement for it."""
    assert gd.reached is not None
    timing = targets.prometheus_timing(gd.reached.urls["prometheus"])
    slack = theory.slack_seconds(timing.scrape_interval, timing.evaluation_interval, PROBE_POLL)
    by_name = {s.name: s for s in gd.slos}
    out = {}
    for item in gd.prepared:
        for alert in item.expected_alerts:
            slo, severity = alert.split("/")
            expected = theory.first_to_fire(by_name[slo], severity, 1.0, gd.plan.time_scale)
            if expected is not None and expected.theory_seconds is not None:
                out[alert] = (round(expected.theory_seconds, 3), round(slack, 3))
    return out


def run_experiment(gd: GameDay, item: Prepared) -> ev.ExperimentRun:
    assert gd.reached is not None
    name = item.plan.name
    started = time.time()
    gd.events.append(tl.Event(started, tl.EXPERIMENT_STARTED, name))
    before = budgets(gd)
    partial = partial_dir(gd)
    journal_path = partial / "journals" / f"{name}.json"
    base = ev.ExperimentRun(
        name=name,
        file=item.plan.file,
        expect=item.plan.expect,
        expected_alerts=item.expected_alerts,
        outcome="error",
        started_at=started,
        budget_before=before,
        theory=gd.theory,
        delivery_known=_delivery_known(gd),
        journal=str(Path("journals") / journal_path.name),
    )
    try:
        result = runner.run_experiment(
            item.plan.file,
            target_file=gd.reached.configuration[targets.TARGET_FILE_KEY],
            journal_path=journal_path,
            variables={**gd.reached.variables, **item.plan.vars},
            slo_paths=list(gd.plan.slo_paths),
            timeout=item.plan.timeout,
            capture=True,
            validate=False,  # validated once, before the game day started
        )
    except TokensloError as exc:
        gd.error = exc
        ended = time.time()
        gd.events.append(tl.Event(ended, tl.EXPERIMENT_ENDED, name, detail="error"))
        return replace(base, ended_at=ended, error=str(exc))
    write_text(partial / "logs" / f"{name}.log", result.output)
    ended = time.time()
    record = _run_record(gd.reached.chaos_state_dir, str(result.extra.get("run_id", "")))
    gd.events += tl.fault_events(name, record)
    gd.events.append(tl.Event(ended, tl.EXPERIMENT_ENDED, name, detail=result.verdict.outcome))
    journal = runner.read_journal(result.journal_path)
    marks = record.get("events") or {}
    return replace(
        base,
        outcome=result.verdict.outcome,
        ended_at=ended,
        reasons=tuple(result.verdict.reasons),
        detections=tuple(ev.detections_from_journal(journal)),
        injected_at=marks.get(actions.INJECTED_AT),
        cleared_at=marks.get(actions.CLEARED_AT),
    )


def _run_record(state_dir: Path, run_id: str) -> dict:
    path = state_dir / runstate.RUNS_DIR / f"{run_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _delivery_known(gd: GameDay) -> bool:
    return gd.reached is not None and (
        gd.reached.notifications_file is not None or gd.reached.webhook_url is not None
    )
