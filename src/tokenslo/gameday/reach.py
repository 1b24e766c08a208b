"""Reaching the game day's target: start (or find) the lab, or check an external target,
before anything is injected; and refuse rules that run at another time scale.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from tokenslo.chaos import runner, targets
from tokenslo.errors import InputError
from tokenslo.gameday.plan import GameDayPlan
from tokenslo.gameday.state import GameDay, Reached
from tokenslo.rules import conventions as conv
from tokenslo.target.loader import load_target


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
