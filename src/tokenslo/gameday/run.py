"""``tokenslo gameday``: bring up (or reach) the target, load it, run the experiments, judge.

The sequence of the game day; each phase lives in its own module: ``reach`` (the
target), ``background_load``, ``experiments`` (one chaos run each), ``recovery``
(budgets and waiting for the SLOs to recover) and ``finish`` (clean-up, judgement,
report). Everything they decide is delegated to pure modules (``plan``,
``timeline``, ``evaluate``) and to the components they drive: the lab orchestrator,
the chaos runner (``--rollback-strategy always``), the chaos background load, the
engine (budgets, recovery) and the report renderers.

Interrupts: SIGINT, SIGTERM and SIGHUP become ``KeyboardInterrupt``. The chaos runner
forwards it to ``chaos`` so the experiment's rollbacks run; then the game day
clears every fault on every target service (belt and braces), stops its load,
writes a partial report marked interrupted, stops what it started and exits 130.
While it cleans up, further stop signals are ignored (every step is bounded).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

from tokenslo.chaos import runner
from tokenslo.errors import InputError, TokensloError, UnavailableError
from tokenslo.gameday import timeline as tl
from tokenslo.gameday.background_load import ensure_load, start_load
from tokenslo.gameday.experiments import detection_theory, run_experiment
from tokenslo.gameday.finish import finish
from tokenslo.gameday.plan import ExperimentPlan, GameDayPlan, expected_alerts, typed_vars
from tokenslo.gameday.progress import Progress
from tokenslo.gameday.reach import reach_target
from tokenslo.gameday.recovery import budgets, budgets_consumed, count_firing, wait_recovered
from tokenslo.gameday.state import GameDay, Options, Outcome, Prepared
from tokenslo.signals import interrupts_ignored, interrupts_raise
from tokenslo.spec.loader import load_paths


def run_gameday(options: Options) -> Outcome:
    """The whole game day; returns the exit code (0 met, 1 missed, 130 interrupted) and
    where the report went. Bad input raises InputError before anything starts."""
    plan = options.plan
    holder: dict[str, GameDay] = {}
    progress = Progress(
        enabled=options.progress,
        alerts_fired=lambda: count_firing(holder["gd"]) if "gd" in holder else None,
    )
    try:
        progress.phase("checking the game day and its experiments")
        slos = load_paths(list(plan.slo_paths))
        prepared = prepare(plan.selected(options.include_extended), {s.name for s in slos}, plan)
        gd = holder["gd"] = GameDay(options=options, slos=slos, prepared=prepared)
        with interrupts_raise():
            try:
                _run(gd, progress)
            except KeyboardInterrupt:
                gd.interrupted = True
                progress.note("gameday: interrupted; rolling back and writing a partial report")
            except TokensloError as exc:
                gd.error = exc  # raised again by the CLI after the table: one line, its exit code
            finally:
                with interrupts_ignored():
                    outcome = finish(gd, progress)
    finally:
        progress.close()
    if gd.error is not None and not gd.interrupted:
        outcome.exit_code = gd.error.exit_code
        outcome.error = gd.error
    return outcome


def prepare(
    selected: tuple[ExperimentPlan, ...], slo_names: set[str], plan: GameDayPlan
) -> list[Prepared]:
    """Pre-check every experiment (ours and ``chaos validate``) before anything starts."""
    out = []
    for index, experiment in enumerate(selected):
        doc = runner.precheck(experiment.file, typed_vars(experiment.vars), dict(os.environ))
        runner.chaos_validate(experiment.file)
        alerts = expected_alerts(experiment, doc.data)
        for alert in alerts:
            if alert.split("/")[0] not in slo_names:
                raise InputError(
                    f"experiment {experiment.name} expects alert {alert!r} but no such SLO in "
                    f"{', '.join(plan.slo_paths)}",
                    file=plan.source,
                    field=f"experiments[{index}].alerts",
                )
        out.append(Prepared(experiment, alerts))
    return out


# ---------------------------------------------------------------- the run


def _run(gd: GameDay, progress: Progress) -> None:
    progress.phase("bringing up the target")
    gd.reached = reach_target(gd)
    gd.events.append(tl.Event(time.time(), tl.PHASE, detail="target ready"))
    gd.theory = detection_theory(gd)
    start_load(gd, progress)
    total = len(gd.prepared)
    for index, item in enumerate(gd.prepared, start=1):
        ensure_load(gd)
        progress.phase("running", item.plan.name, index, total)
        run = run_experiment(gd, item)
        gd.runs.append(run)
        if run.outcome == "interrupted":
            raise KeyboardInterrupt
        if run.error:
            raise gd.error or UnavailableError(run.error)
        progress.phase("waiting for the SLOs to recover", item.plan.name, index, total)
        recovered = wait_recovered(gd, gd.plan.recovery_timeout)
        if recovered is not None:
            gd.events.append(tl.Event(recovered, tl.SLOS_RECOVERED, item.plan.name))
        gd.runs[-1] = replace(
            run,
            recovered_at=recovered,
            budget_after=budgets(gd),
            budget_consumed=budgets_consumed(gd, run.started_at, recovered or time.time()),
        )
