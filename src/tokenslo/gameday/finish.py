"""The end of every game day, finished or not: clear the faults, stop the load, judge,
write the report (``result.json``, HTML, Markdown) and stop the lab it started.

It runs after an interrupt too (with further stop signals ignored), so the partial
report shows whatever ran.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from tokenslo.chaos import targets
from tokenslo.engine.evaluator import iso_time
from tokenslo.errors import TokensloError
from tokenslo.gameday import evaluate as ev
from tokenslo.gameday import timeline as tl
from tokenslo.gameday.background_load import stop_load
from tokenslo.gameday.progress import Progress
from tokenslo.gameday.recovery import prom_client
from tokenslo.gameday.report_dir import final_dir, partial_dir, write_text
from tokenslo.gameday.state import GameDay, Outcome
from tokenslo.reports.data import collect, source_of
from tokenslo.reports.model import ReportModel
from tokenslo.reports.render import write_report
from tokenslo.rules import conventions as conv

ALERTS_RANGE_QUERY = f'ALERTS{{alertname="{conv.BURN_ALERT}"}}'
MAX_RANGE_POINTS = 10_000
REPORT_POINTS = 600


def finish(gd: GameDay, progress: Progress) -> Outcome:
    """Roll back, stop the load, judge, write the report, stop what we started."""
    progress.phase("cleaning up")
    stop_load(gd)
    _clear_all_faults(gd)
    gd.ended_at = time.time()
    progress.phase("evaluating and writing the report")
    events, fetch_notes = _timeline(gd)
    gd.notes += fetch_notes
    results = [ev.evaluate_experiment(run, events) for run in gd.runs]
    code = ev.exit_code(results, gd.interrupted)
    report_dir = None
    try:
        # Nothing started (bad input or an unreachable target at start-up): no report.
        if gd.reached is not None or gd.interrupted:
            report_dir = _write_reports(gd, events, results, code)
    finally:
        _stop_target(gd, progress)
    table = ev.format_table(results)
    return Outcome(code, report_dir, results, gd.interrupted, table)


def _clear_all_faults(gd: GameDay) -> None:
    """Belt and braces after the chaos rollbacks: no fault or clock offset survives."""
    reached = gd.reached
    if reached is None or reached.admin_secret_file is None:
        return
    from tokenslo.lab.faults.client import LabAdmin

    try:
        secret = reached.admin_secret_file.read_text(encoding="utf-8").strip()
    except OSError:
        gd.notes.append("admin secret file unreadable: faults end at their expiry")
        return
    for name, url in reached.admin_urls.items():
        try:
            cleared = LabAdmin(url, secret).clear_faults()
        except TokensloError as exc:
            gd.notes.append(f"could not clear faults on {name}: {exc} (they expire by themselves)")
            continue
        if cleared:
            gd.notes.append(f"cleared {cleared} fault(s) left on {name} after the rollbacks")


def _timeline(gd: GameDay) -> tuple[list[tl.Event], list[str]]:
    notes: list[str] = []
    events = list(gd.events)
    end = gd.ended_at or time.time()
    starts = [(e.experiment, e.at) for e in events if e.kind == tl.EXPERIMENT_STARTED]
    if gd.reached is not None:
        step = max(1.0, math.ceil((end - gd.started_at) / MAX_RANGE_POINTS))
        try:
            with prom_client(gd) as client:
                matrix = client.query_range(ALERTS_RANGE_QUERY, gd.started_at, end, step)
            events += tl.alert_events(matrix, step, end, [s.name for s in gd.slos])
        except TokensloError as exc:
            notes.append(f"alerts unavailable for the timeline: {exc}")
        try:
            events += tl.delivery_events(_notifications(gd), since=gd.started_at)
        except TokensloError as exc:
            notes.append(f"notifications unavailable: {exc}")
    return tl.build(events, tl.slots(starts, end + 1)), notes


def _write_reports(
    gd: GameDay, events: list[tl.Event], results: list[ev.ExperimentResult], code: int
) -> Path:
    partial = partial_dir(gd)
    expected = {
        r.name: tuple(sorted({a.split("/")[0] for a in r.expected_alerts})) for r in results
    }
    model = _report_model(gd, events, results, expected)
    write_report(model, partial / "gameday.html")
    write_report(model, partial / "gameday.md")
    document = result_document(gd, events, results, code)
    write_text(partial / "result.json", json.dumps(document, indent=2) + "\n")
    final = final_dir(gd)
    os.replace(partial, final)
    return final


def _report_model(gd, events, results, expected) -> ReportModel:
    end = max(gd.ended_at or time.time(), gd.started_at + 2)
    step = max(1.0, round((end - gd.started_at) / REPORT_POINTS))
    faults = tl.fault_intervals(events, expected)
    experiments = [ev.to_report_experiment(r) for r in results]
    title = gd.plan.title + (" (interrupted)" if gd.interrupted else "")
    if gd.reached is not None:
        try:
            with prom_client(gd) as client:
                model = collect(
                    gd.slos,
                    client,
                    gd.started_at,
                    end,
                    step,
                    title=title,
                    faults=faults,
                    experiments=experiments,
                    time_scale=gd.plan.time_scale,
                    interrupted=gd.interrupted,
                )
            model.notes += gd.notes
            return model
        except TokensloError as exc:
            gd.notes.append(f"report without charts: {exc}")
    return ReportModel(
        title=title,
        start=gd.started_at,
        end=end,
        step=step,
        generated_at=time.time(),
        faults=faults,
        experiments=experiments,
        interrupted=gd.interrupted,
        time_scale=gd.plan.time_scale,
        notes=list(gd.notes),
    )


def result_document(
    gd: GameDay, events: list[tl.Event], results: list[ev.ExperimentResult], code: int
) -> dict[str, Any]:
    """result.json: everything a pipeline needs, no secret (URLs and file names only)."""
    reached = gd.reached
    target: dict[str, Any] = {"kind": gd.plan.target.kind}
    if reached is not None:
        target.update(
            urls={k: source_of(v) for k, v in reached.urls.items()},
            started_by_gameday=reached.started_lab,
            state_dir=str(reached.lab_state_dir or reached.chaos_state_dir),
        )
    return {
        "title": gd.plan.title,
        "plan": gd.plan.source,
        "target": target,
        "time_scale": gd.plan.time_scale,
        "load": {"driver": gd.plan.load.driver, "rate": gd.plan.load.rate},
        "started": iso_time(gd.started_at),
        "ended": iso_time(gd.ended_at or time.time()),
        "duration_seconds": round((gd.ended_at or time.time()) - gd.started_at, 1),
        "interrupted": gd.interrupted,
        "error": None if gd.error is None else str(gd.error),
        "exit_code": gd.error.exit_code if gd.error and not gd.interrupted else code,
        "all_met": bool(results) and all(r.met for r in results) and not gd.interrupted,
        "experiments": [ev.result_to_json(r) for r in results],
        "not_run": [p.plan.name for p in gd.prepared[len(results) :]],
        "timeline": tl.to_json(events),
        "notes": gd.notes,
    }


def _stop_target(gd: GameDay, progress: Progress) -> None:
    reached = gd.reached
    if reached is None or not reached.started_lab:
        return
    if gd.options.keep:
        gd.notes.append(f"lab kept running in {reached.lab_state_dir} (--keep)")
        return
    from tokenslo.lab.orchestrator import lab_down

    progress.phase("stopping the lab")
    lab_down(reached.lab_state_dir)  # type: ignore[arg-type]


def _notifications(gd: GameDay) -> list[dict]:
    assert gd.reached is not None
    if gd.reached.notifications_file is not None:
        from tokenslo.lab.webhook import read_notifications

        return read_notifications(gd.reached.notifications_file)
    if gd.reached.webhook_url:
        body = targets.get_json(gd.reached.webhook_url + "/notifications")
        return body.get("notifications", []) if isinstance(body, dict) else []
    return []
