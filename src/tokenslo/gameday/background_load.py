"""The game day's background load: started once the target is up, warmed up until every
expected SLO has data, restarted if it ends early, stopped by its recorded PID.
"""

from __future__ import annotations

import contextlib
import time

from tokenslo.chaos import actions, runstate
from tokenslo.errors import TokensloError, UnavailableError
from tokenslo.gameday import timeline as tl
from tokenslo.gameday.progress import Progress
from tokenslo.gameday.recovery import POLL_SECONDS, statuses
from tokenslo.gameday.state import GameDay
from tokenslo.waiting import wait_until

DATA_WAIT = 30.0  # after the warm-up, at most this long for every SLO window to have data


def _load_duration(gd: GameDay) -> float:
    total = gd.plan.load.warmup + sum(
        p.plan.timeout + gd.plan.recovery_timeout for p in gd.prepared
    )
    return min(actions.MAX_LOAD_SECONDS, total + 60.0)


def start_load(gd: GameDay, progress: Progress) -> None:
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


def ensure_load(gd: GameDay) -> None:
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


def stop_load(gd: GameDay) -> None:
    if gd.load_started and gd.reached is not None:
        with contextlib.suppress(TokensloError, OSError, RuntimeError):
            actions.stop_background_load(configuration=gd.reached.configuration)


def _wait_for_data(gd: GameDay) -> None:
    """Until every SLO an experiment expects to page has data in all its windows."""
    wanted = {a.split("/")[0] for p in gd.prepared for a in p.expected_alerts}
    missing: list[str] = []

    def has_data() -> bool:
        nonlocal missing
        missing = [s.name for s in statuses(gd) if s.name in wanted and s.state == "no_data"]
        return not missing

    try:
        wait_until(has_data, DATA_WAIT, POLL_SECONDS, "data in every expected SLO")
    except TimeoutError:
        gd.notes.append(f"still no data after the warm-up for: {', '.join(missing)}")
