"""``tokenslo gameday``: bring up (or reach) the target, load it, run the experiments, judge.

The I/O of the game day; everything it decides is delegated to pure modules
(``plan``, ``timeline``, ``evaluate``) and to the components it drives: the lab
orchestrator, the chaos runner (``--rollback-strategy always``), the chaos
background load, the engine (budgets, recovery) and the report renderers.

Interrupts: SIGINT, SIGTERM and SIGHUP become ``KeyboardInterrupt``. The chaos runner
forwards it to ``chaos`` so the experiment's rollbacks run; then the game day
clears every fault on every target service (belt and braces), stops its load,
writes a partial report marked interrupted, stops what it started and exits 130.
While it cleans up, further stop signals are ignored (every step is bounded).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tokenslo.chaos import actions, runner, runstate, targets, theory
from tokenslo.core import burnrate
from tokenslo.core.model import SLO
from tokenslo.core.timescale import scale_slo
from tokenslo.engine.evaluator import evaluate, evaluate_window, iso_time, window_burn
from tokenslo.errors import InputError, TokensloError, UnavailableError
from tokenslo.files import write_atomically
from tokenslo.gameday import evaluate as ev
from tokenslo.gameday import timeline as tl
from tokenslo.gameday.plan import ExperimentPlan, GameDayPlan, expected_alerts, typed_vars
from tokenslo.gameday.progress import Progress
from tokenslo.lab import LAB_STATE_DIR
from tokenslo.prometheus.client import PromClient
from tokenslo.render.report_data import collect, source_of
from tokenslo.render.report_model import ReportModel
from tokenslo.render.reports import write_report
from tokenslo.rules import conventions as conv
from tokenslo.signals import interrupts_ignored, interrupts_raise
from tokenslo.spec.loader import load_paths
from tokenslo.target.loader import load_target
from tokenslo.target.model import Target
from tokenslo.waiting import wait_until

ALERTS_RANGE_QUERY = f'ALERTS{{alertname="{conv.BURN_ALERT}"}}'
POLL_SECONDS = 1.0
DATA_WAIT = 30.0  # after the warm-up, at most this long for every SLO window to have data
MAX_RANGE_POINTS = 10_000
REPORT_POINTS = 600
PROBE_POLL = 0.25  # the chaos probes' poll interval (part of their slack)


@dataclass(frozen=True)
class Options:
    plan: GameDayPlan
    include_extended: bool = False
    keep: bool = False
    state_dir: Path = Path(LAB_STATE_DIR)
    out_dir: Path = Path("reports")
    lab_config: str | None = None  # overrides the plan's target.lab_config
    progress: bool = True


@dataclass
class Outcome:
    exit_code: int
    report_dir: Path | None
    results: list[ev.ExperimentResult]
    interrupted: bool
    table: str = ""
    error: TokensloError | None = None  # what stopped the game day early (not an interrupt)


@dataclass
class Prepared:
    plan: ExperimentPlan
    expected_alerts: tuple[str, ...]


@dataclass
class Reached:
    """The target as the game day reaches it (no secrets: files only)."""

    kind: str  # lab | external
    target: Target
    configuration: dict[str, str]  # chaos configuration keys: the target file, SLO paths
    notifications_file: Path | None = None  # the lab's webhook log (read directly)
    started_lab: bool = False
    lab_state_dir: Path | None = None

    @property
    def urls(self) -> dict[str, str]:
        t = self.target
        found = {"idp": t.discovery_url, "api": t.api_url, "prometheus": t.prometheus_url}
        found.update(alertmanager=t.alertmanager_url, webhook=t.webhook_url)
        return {name: url for name, url in found.items() if url}

    @property
    def chaos_state_dir(self) -> Path:
        return self.target.state_dir

    @property
    def webhook_url(self) -> str | None:
        return self.target.webhook_url

    @property
    def admin_secret_file(self) -> Path | None:
        return self.target.admin_secret_file

    @property
    def admin_urls(self) -> dict[str, str]:
        """Fault injection endpoints only: the admin secret never goes anywhere else."""
        return {name: f.admin_url for name, f in self.target.faults.items()}

    @property
    def variables(self) -> dict[str, str]:
        """``--var`` for every experiment: the keys each bundled experiment declares."""
        return dict(self.configuration)


@dataclass
class GameDay:
    """Mutable record of one game day while it runs."""

    options: Options
    slos: list[SLO]
    prepared: list[Prepared]
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    reached: Reached | None = None
    load_started: bool = False
    events: list[tl.Event] = field(default_factory=list)
    runs: list[ev.ExperimentRun] = field(default_factory=list)
    interrupted: bool = False
    error: TokensloError | None = None
    notes: list[str] = field(default_factory=list)
    theory: dict[str, tuple[float, float]] = field(default_factory=dict)
    seen_firing: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def plan(self) -> GameDayPlan:
        return self.options.plan

    @property
    def scaled(self) -> list[SLO]:
        return [scale_slo(s, self.plan.time_scale) for s in self.slos]


# ---------------------------------------------------------------- entry point


def run_gameday(options: Options) -> Outcome:
    """The whole game day; returns the exit code (0 met, 1 missed, 130 interrupted) and
    where the report went. Bad input raises InputError before anything starts."""
    plan = options.plan
    holder: dict[str, GameDay] = {}
    progress = Progress(
        enabled=options.progress,
        alerts_fired=lambda: _count_firing(holder["gd"]) if "gd" in holder else None,
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
                    outcome = _finish(gd, progress)
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
    gd.theory = _theory(gd)
    _start_load(gd, progress)
    total = len(gd.prepared)
    for index, item in enumerate(gd.prepared, start=1):
        _ensure_load(gd)
        progress.phase("running", item.plan.name, index, total)
        run = _run_experiment(gd, item)
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
            budget_after=_budgets(gd),
            budget_consumed=_consumed(gd, run.started_at, recovered or time.time()),
        )


def reach_target(gd: GameDay) -> Reached:
    if gd.plan.target.kind == "lab":
        return _reach_lab(gd)
    return _reach_external(gd)


def _reach_lab(gd: GameDay) -> Reached:
    from tokenslo.lab.config import load_lab_config
    from tokenslo.lab.orchestrator import lab_up
    from tokenslo.lab.state import write_target_file

    plan = gd.plan
    config = load_lab_config(gd.options.lab_config or plan.target.lab_config)
    config = replace(config, rules_time_scale=plan.time_scale, slo_paths=plan.slo_paths)
    state = lab_up(config, gd.options.state_dir)
    target_file = write_target_file(state, config)
    reached = Reached(
        kind="lab",
        target=load_target(target_file),
        configuration=_configuration(target_file, plan),
        notifications_file=state.notifications_file,
        started_lab=not state.already_running,
        lab_state_dir=state.state_dir,
    )
    if state.already_running:
        gd.notes.append(f"the lab in {state.state_dir} was already running: left running")
        check_time_scale(gd, reached.urls["prometheus"], str(state.state_dir))
    return reached


def _reach_external(gd: GameDay) -> Reached:
    """A real target: its description says everything; discovery (through its proxy, if
    any), its API and Prometheus must answer before anything is injected (else exit 3)."""
    assert gd.plan.target.file is not None
    file = Path(gd.plan.target.file).resolve()
    target = load_target(file)
    target.require("prometheus_url", "a game day")
    reached = Reached(kind="external", target=target, configuration=_configuration(file, gd.plan))
    runner.check_reachable(reached.configuration)
    target.state_dir.mkdir(parents=True, exist_ok=True)
    check_time_scale(gd, reached.urls["prometheus"], gd.plan.source)
    return reached


def _configuration(target_file: Path, plan: GameDayPlan) -> dict[str, str]:
    return {
        targets.TARGET_FILE_KEY: str(target_file),
        targets.SLO_PATHS_KEY: _slo_paths_value(plan),
    }


def check_time_scale(gd: GameDay, prometheus_url: str, where: str) -> None:
    """The rules Prometheus evaluates must run at the game day's time scale, or every
    expected detection time would be off by the ratio: refuse (exit 2) instead."""
    for slo in gd.slos:
        loaded = targets.scale_from_rules(slo, targets.burn_alert_rules(prometheus_url, slo.name))
        if loaded is None:
            continue
        if not math.isclose(loaded, gd.plan.time_scale, rel_tol=1e-3):
            raise InputError(
                f"the running rules use time scale {loaded:g} (lab in {where}) but this game "
                f"day needs {gd.plan.time_scale:g}: stop that lab (tokenslo lab down "
                f"--state-dir {gd.options.state_dir}) or set time_scale: {loaded:g}",
                file=gd.plan.source,
                field="time_scale",
            )
        return
    gd.notes.append(f"no {conv.BURN_ALERT} rules found for these SLOs in {prometheus_url}")


def _slo_paths_value(plan: GameDayPlan) -> str:
    return ",".join(str(Path(p).resolve()) for p in plan.slo_paths)


def _theory(gd: GameDay) -> dict[str, tuple[float, float]]:
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


# ---------------------------------------------------------------- load


def _load_duration(gd: GameDay) -> float:
    total = gd.plan.load.warmup + sum(
        p.plan.timeout + gd.plan.recovery_timeout for p in gd.prepared
    )
    return min(actions.MAX_LOAD_SECONDS, total + 60.0)


def _start_load(gd: GameDay, progress: Progress) -> None:
    load = gd.plan.load
    if load.driver == "none":
        return
    assert gd.reached is not None
    progress.phase(f"background load ({load.driver}), warming up")
    _start_load_process(gd)
    gd.load_started = True
    gd.events.append(tl.Event(time.time(), tl.PHASE, detail=f"background load ({load.driver})"))
    time.sleep(load.warmup)
    _wait_for_data(gd)


def _start_load_process(gd: GameDay) -> None:
    """The chaos action's background load: bounded, paced, stopped by its recorded PID."""
    assert gd.reached is not None
    load = gd.plan.load
    pace = {} if load.rate is None else {"rate": load.rate}
    try:
        actions.start_background_load(
            _load_duration(gd),
            driver=load.driver,
            users=load.users,
            scenario=load.scenario,
            configuration=gd.reached.configuration,
            **pace,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise UnavailableError(f"background load ({load.driver}) did not start: {exc}") from None


def _ensure_load(gd: GameDay) -> None:
    """Restart the background load if it ended (a game day longer than its bound)."""
    if not gd.load_started:
        return
    record = runstate.current().processes.get("load")
    if record and _alive(record):
        return
    _start_load_process(gd)


def _alive(record: dict) -> bool:
    from tokenslo.prometheus.process import pid_alive, proc_start_time

    pid = int(record["pid"])
    child = actions._CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    return pid_alive(pid) and proc_start_time(pid) == record.get("start_time")


def _stop_load(gd: GameDay) -> None:
    if gd.load_started and gd.reached is not None:
        with contextlib.suppress(TokensloError, OSError, RuntimeError):
            actions.stop_background_load(configuration=gd.reached.configuration)


def _wait_for_data(gd: GameDay) -> None:
    """Until every SLO an experiment expects to page has data in all its windows."""
    wanted = {a.split("/")[0] for p in gd.prepared for a in p.expected_alerts}
    missing: list[str] = []

    def has_data() -> bool:
        nonlocal missing
        missing = [s.name for s in _statuses(gd) if s.name in wanted and s.state == "no_data"]
        return not missing

    try:
        wait_until(has_data, DATA_WAIT, POLL_SECONDS, "data in every expected SLO")
    except TimeoutError:
        gd.notes.append(f"still no data after the warm-up for: {', '.join(missing)}")


# ---------------------------------------------------------------- experiments


def _run_experiment(gd: GameDay, item: Prepared) -> ev.ExperimentRun:
    assert gd.reached is not None
    name = item.plan.name
    started = time.time()
    gd.events.append(tl.Event(started, tl.EXPERIMENT_STARTED, name))
    before = _budgets(gd)
    partial = _partial_dir(gd)
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
    _write_text(partial / "logs" / f"{name}.log", result.output)
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


# ---------------------------------------------------------------- engine and alerts


def _client(gd: GameDay) -> PromClient:
    assert gd.reached is not None
    return PromClient(gd.reached.urls["prometheus"])


def _statuses(gd: GameDay):
    with _client(gd) as client:
        return evaluate(gd.scaled, client)


def _budgets(gd: GameDay) -> dict[str, float | None]:
    """Error budget left per SLO over its (time-scaled) period, from the engine."""
    return {s.name: s.error_budget_remaining for s in _statuses(gd)}


def _consumed(gd: GameDay, start: float, end: float) -> dict[str, float | None]:
    """Per SLO, the share of its (time-scaled) period's budget burnt over [start, end]."""
    span = max(end - start, 1.0)
    with _client(gd) as client:
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
        if not paging and not any(s.state == "page" for s in _statuses(gd)):
            return time.time()
        return None

    try:
        return wait_until(recovered_at, timeout, POLL_SECONDS, "recovery")
    except TimeoutError:
        return None


def _count_firing(gd: GameDay) -> int | None:
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


def _notifications(gd: GameDay) -> list[dict]:
    assert gd.reached is not None
    if gd.reached.notifications_file is not None:
        from tokenslo.lab.webhook import read_notifications

        return read_notifications(gd.reached.notifications_file)
    if gd.reached.webhook_url:
        body = targets.get_json(gd.reached.webhook_url + "/notifications")
        return body.get("notifications", []) if isinstance(body, dict) else []
    return []


# ---------------------------------------------------------------- finishing


def _finish(gd: GameDay, progress: Progress) -> Outcome:
    """Roll back, stop the load, judge, write the report, stop what we started."""
    progress.phase("cleaning up")
    _stop_load(gd)
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
            with _client(gd) as client:
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
    partial = _partial_dir(gd)
    expected = {
        r.name: tuple(sorted({a.split("/")[0] for a in r.expected_alerts})) for r in results
    }
    model = _report_model(gd, events, results, expected)
    write_report(model, partial / "gameday.html")
    write_report(model, partial / "gameday.md")
    document = result_document(gd, events, results, code)
    _write_text(partial / "result.json", json.dumps(document, indent=2) + "\n")
    final = _final_dir(gd)
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
            with _client(gd) as client:
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


# ---------------------------------------------------------------- report directory


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def _partial_dir(gd: GameDay) -> Path:
    path = gd.options.out_dir / f".{_stamp(gd.started_at)}.partial"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _final_dir(gd: GameDay) -> Path:
    base = gd.options.out_dir / _stamp(gd.started_at)
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
