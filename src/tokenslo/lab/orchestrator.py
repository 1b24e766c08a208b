"""``lab up|down|status``: the sequence that starts the lab, records it and stops exactly it.

``up`` checks everything it can before anything starts (ports, IdP/gateway settings,
rules), writes the secrets and configs, starts the components in order and writes the
lab's target file; ``down`` stops the recorded processes in reverse. The pieces live
beside it: ``state`` (state.json), ``credentials``, ``configs``, ``ports`` and
``processes``.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tokenslo.errors import UnavailableError
from tokenslo.lab import target_file
from tokenslo.lab.config import LabConfig
from tokenslo.lab.configs import (
    check_pass_through,
    check_rules,
    gateway_audience,
    issuer_url,
    rule_files,
    write_configs,
)
from tokenslo.lab.credentials import CREDENTIALS_FILE, ensure_admin_secret, ensure_credentials
from tokenslo.lab.ports import check_ports
from tokenslo.lab.processes import ORDER, is_healthy, start_all, stop_components
from tokenslo.lab.state import (
    NOTIFICATIONS_FILE,
    STATE_FILE,
    ComponentStatus,
    LabState,
    locked,
    read_state,
    write_state,
    write_target_file,
)


def _running_state(state_dir: Path) -> LabState | None:
    """The recorded lab if every one of its processes is still ours and alive."""
    state = read_state(state_dir, partial=True)
    if state is None:
        return None
    if state.complete and all(c.is_ours_and_alive() for c in state.components.values()):
        return state
    stop_components(state)  # a partial lab: stop what is left, then start afresh
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return None


def forget_history(state_dir: Path) -> None:
    """Delete an earlier lab's Prometheus TSDB and Alertmanager state before a start.

    A new lab must start with empty alert windows: series of an earlier lab on the same
    ports carry the same labels, so a load test run a minute before would still fill
    the (compressed) windows and dilute the errors a game day injects.
    """
    for stale in (state_dir / "prometheus" / "data", state_dir / "alertmanager" / "am-data"):
        shutil.rmtree(stale, ignore_errors=True)


def lab_up(config: LabConfig, state_dir: str | Path) -> LabState:
    """Start the lab (or return the running one, ``already_running=True``)."""
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    with locked(state_dir):
        running = _running_state(state_dir)
        if running is not None:
            running.already_running = True
            return running
        check_ports(config)
        check_pass_through(config, state_dir)
        notes: list[str] = []
        rules = rule_files(config, notes)
        check_rules(rules, config, state_dir / "rules-check")
        forget_history(state_dir)
        secret_path = ensure_admin_secret(state_dir)
        creds = ensure_credentials(state_dir)
        write_configs(config, state_dir, creds)
        secret = secret_path.read_text(encoding="utf-8").strip()
        state = LabState(
            state_dir=state_dir,
            components={},
            started_at=time.time(),
            admin_secret_file=secret_path,
            credentials_file=state_dir / CREDENTIALS_FILE,
            notifications_file=state_dir / NOTIFICATIONS_FILE,
            issuer=issuer_url(config),
            audience=gateway_audience(config),
            notes=notes,
            complete=False,
        )
        try:
            start_all(config, state, secret, rules)
        except UnavailableError as exc:
            raise UnavailableError(
                f"lab up failed, everything started was stopped: {exc}"
            ) from None
        state.complete = True
        try:
            write_state(state)
            write_target_file(state, config)
        except BaseException:
            stop_components(state)
            (state_dir / STATE_FILE).unlink(missing_ok=True)
            raise
        return state


def lab_down(state_dir: str | Path) -> list[str]:
    """Stop exactly the recorded processes and forget them; idempotent. Returns what was stopped."""
    state_dir = Path(state_dir).resolve()
    if not (state_dir / STATE_FILE).exists():
        return []
    with locked(state_dir):
        state = read_state(state_dir, partial=True)
        if state is None:
            return []
        stopped = stop_components(state)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        (state_dir / target_file.TARGET_FILE).unlink(missing_ok=True)
        return stopped


def lab_status(state_dir: str | Path) -> list[ComponentStatus]:
    """Health of every recorded component; empty when no lab is recorded."""
    state = read_state(Path(state_dir).resolve())
    if state is None:
        return []
    result = []
    for name in ORDER:
        component = state.components.get(name)
        if component is None:
            continue
        alive = component.is_ours_and_alive()
        result.append(
            ComponentStatus(
                name=name,
                pid=component.pid,
                alive=alive,
                healthy=alive and is_healthy(component.health_url),
                url=component.url,
            )
        )
    return result
