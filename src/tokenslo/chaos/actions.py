"""Chaos Toolkit actions of the ``tokenslo`` extension (``module: tokenslo.chaos.actions``).

Faults go through the admin API shared by the lab services and the fault proxy
(``/admin/faults``, ``/admin/clock``, ``/admin/keys/*``). Every fault carries an
expiry the *server* enforces, so a crashed experiment cannot leave one behind;
each action records what it set (``runstate``) so the rollback
``clear_recorded_faults`` removes exactly that. Targets come from the
experiment's configuration (see ``tokenslo.chaos.targets``).
"""

import contextlib
import math
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from tokenslo.chaos import runstate, targets
from tokenslo.chaos.runstate import Change
from tokenslo.chaos.tokens import api_call_from, issue_token
from tokenslo.chaos.types import Configuration
from tokenslo.errors import InputError, UnavailableError
from tokenslo.jws import token_fingerprint
from tokenslo.lab.faults.client import LabAdmin
from tokenslo.signals import interrupts_deferred

__all__ = [
    "inject_http_fault",
    "set_clock_offset",
    "rotate_signing_key",
    "replay_token",
    "set_token_profile",
    "clear_faults",
    "clear_recorded_faults",
    "start_background_load",
    "stop_background_load",
]

MAX_EXPIRY = 3600.0
MAX_LOAD_SECONDS = 3600.0
INJECTED_AT = "injected_at"
CLEARED_AT = "cleared_at"
_CHILDREN: dict[int, subprocess.Popen] = {}  # reaped by PID when stopped


def _expiry(expires_in: Any) -> float:
    """A fault without a positive, bounded expiry is refused before anything is sent."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        raise ValueError(f"expires_in is required: seconds > 0 (got {expires_in!r})")
    try:
        value = float(expires_in)
    except ValueError:
        raise ValueError(f"expires_in must be a number of seconds, got {expires_in!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"expires_in must be > 0 seconds: every fault expires (got {expires_in!r})"
        )
    if value > MAX_EXPIRY:
        raise ValueError(f"expires_in must be at most {MAX_EXPIRY:g} s, got {value:g}")
    return value


def _context(configuration: Configuration | None) -> tuple[targets.Targets, runstate.RunState]:
    resolved = targets.resolve(configuration)
    return resolved, runstate.current(resolved.state_dir)


def _admin(resolved: targets.Targets, target: str) -> LabAdmin:
    return LabAdmin(resolved.admin_url(target), resolved.admin_secret())


def _record_change(
    run: runstate.RunState,
    admin: LabAdmin,
    mark_injection: bool,
    *,
    kind: str,
    target: str,
    ref: str,
    expires_at: float | None,
    detail: dict[str, Any],
    undone: bool = False,
) -> float:
    """Record what an action set (so a rollback can undo it) and, with ``mark_injection``,
    when it was injected; returns that time. ``undone``: recorded as already cleared."""
    now = time.time()
    run.record(
        Change(
            kind=kind,
            target=target,
            admin_url=admin.base_url,
            ref=ref,
            set_at=now,
            expires_at=expires_at,
            detail=detail,
            cleared_at=now if undone else None,
        )
    )
    if mark_injection:
        run.mark(INJECTED_AT, now)
    return now


def inject_http_fault(
    target: str,
    effect: str,
    expires_in: float,
    path: str = "",
    path_prefix: str = "",
    endpoint: str = "",
    status: int = 503,
    delay_seconds: float = 0.0,
    probability: float = 1.0,
    method: str = "",
    mark_injection: bool = True,
    configuration: Configuration | None = None,
) -> dict:
    """Inject an HTTP fault on ``target`` (a fault injector of the target file — idp,
    gateway — or an admin base URL) for requests to exactly ``path``, to every path under
    ``path_prefix``, or to exactly the path of the discovered ``endpoint`` (a metadata
    field: token_endpoint, jwks_uri, introspection_endpoint, revocation_endpoint — the same
    experiment then works on any IdP); give exactly one. ``effect``: status (answer
    ``status``), delay (``delay_seconds`` then pass through), hang, drop (close the
    connection) or malformed (truncate the body). ``expires_in`` (seconds, required, > 0):
    the server removes the fault by itself then. Returns the fault id and expiry; the time
    of injection is recorded for the alert-timing probes unless ``mark_injection`` is
    false."""
    if sum(map(bool, (path, path_prefix, endpoint))) != 1:
        raise ValueError(
            "give exactly one of path (exact match, e.g. /token), path_prefix (prefix match) "
            f"and endpoint (e.g. token_endpoint); got path={path!r} path_prefix="
            f"{path_prefix!r} endpoint={endpoint!r}"
        )
    expiry = _expiry(expires_in)
    resolved, run = _context(configuration)
    if endpoint:
        path = urlsplit(resolved.endpoints().require(endpoint)).path or "/"
    admin = _admin(resolved, target)
    with interrupts_deferred():  # the change and its record: both or neither
        fault = admin.add_fault(
            effect,
            expiry,
            path_prefix or None,
            path=path or None,
            method=method or None,
            status=status if effect == "status" else None,
            delay_seconds=delay_seconds if effect == "delay" else None,
            probability=probability,
        )
        where = {"path": path} if path else {"path_prefix": path_prefix}
        if endpoint:
            where["endpoint"] = endpoint
        now = _record_change(
            run,
            admin,
            mark_injection,
            kind="fault",
            target=target,
            ref=str(fault["id"]),
            expires_at=fault.get("expires_at"),
            detail={"effect": effect, **where},
        )
    return {
        "fault_id": fault["id"],
        "target": target,
        "effect": effect,
        **where,
        "expires_at": fault.get("expires_at"),
        "injected_at": now,
    }


def set_clock_offset(
    target: str,
    offset_seconds: float,
    expires_in: float,
    mark_injection: bool = True,
    configuration: Configuration | None = None,
) -> dict:
    """Shift ``target``'s clock by ``offset_seconds`` (positive: ahead) until
    ``expires_in`` seconds (required, > 0) have passed; tokens it issues or checks
    then use the skewed time."""
    expiry = _expiry(expires_in)
    resolved, run = _context(configuration)
    admin = _admin(resolved, target)
    with interrupts_deferred():  # the change and its record: both or neither
        clock = admin.set_clock(float(offset_seconds), expiry)
        now = _record_change(
            run,
            admin,
            mark_injection,
            kind="clock",
            target=target,
            ref="clock",
            expires_at=clock.get("expires_at"),
            detail={"offset_seconds": float(offset_seconds)},
        )
    return {
        "target": target,
        "offset_seconds": float(offset_seconds),
        "injected_at": now,
        "expires_at": clock.get("expires_at"),
    }


def rotate_signing_key(
    publish: bool = True,
    expires_in: float = 0,
    target: str = "idp",
    mark_injection: bool = True,
    configuration: Configuration | None = None,
) -> dict:
    """Rotate the IdP's signing key. With ``publish: false`` the new key signs tokens
    but stays out of the JWKS (failure F3); that needs ``expires_in`` (> 0): the IdP
    itself publishes the key then, even if the experiment died. A rollback
    (``clear_recorded_faults``) publishes it at once."""
    expiry = None if publish else _expiry(expires_in)
    resolved, run = _context(configuration)
    admin = _admin(resolved, target)
    with interrupts_deferred():  # the change and its record: both or neither
        state = admin.rotate_keys(publish=bool(publish), expires_in=expiry)
        kid = str(state.get("current_kid") or state.get("kid"))
        expires_at = state.get("publish_at") if expiry is not None else None
        now = _record_change(
            run,
            admin,
            mark_injection,
            kind="key" if not publish else "rotation",
            target=target,
            ref=kid,
            expires_at=expires_at,
            detail={"published": bool(publish)},
            # a published rotation is a normal rotation: nothing to undo
            undone=bool(publish),
        )
    return {
        "kid": kid,
        "published": bool(publish),
        "jwks_kids": state.get("jwks_kids", []),
        "injected_at": now,
        "expires_at": expires_at,
    }


def set_token_profile(
    expires_in: float,
    client_id: str = "",
    audience: str = "",
    scope: str | None = None,
    extra_claims_bytes: int = 0,
    target: str = "idp",
    mark_injection: bool = True,
    configuration: Configuration | None = None,
) -> dict:
    """Make the lab IdP issue bad tokens for ``client_id`` (default: the target's load
    client; ``*``: every client) until ``expires_in`` seconds (required, > 0) have passed:
    for another ``audience`` (F10), with ``scope`` instead of the requested scope (F7; ``""``
    for none) or bloated by a claim of ``extra_claims_bytes`` (F6). Lab only: a fault
    proxy cannot change what a real IdP signs, so any other target is bad input before
    anything is sent. The rollback (``clear_recorded_faults``) ends the profile."""
    expiry = _expiry(expires_in)
    resolved, run = _context(configuration)
    injector = resolved.target.fault_admin(target) if "://" not in target else None
    if injector is None or injector.kind != "lab":
        raise InputError(
            f"set_token_profile needs the lab IdP (faults.{target}.kind: lab): a fault "
            "proxy cannot change the tokens a real IdP issues"
        )
    client = client_id or resolved.target.client("load").client_id
    admin = _admin(resolved, target)
    with interrupts_deferred():  # the change and its record: both or neither
        profile = admin.set_token_profile(
            client,
            expiry,
            audience=audience or None,
            scope=scope,
            extra_claims_bytes=int(extra_claims_bytes),
        )
        changes = {k: profile.get(k) for k in ("audience", "scope", "extra_claims_bytes")}
        now = _record_change(
            run,
            admin,
            mark_injection,
            kind="profile",
            target=target,
            ref=client,
            expires_at=profile.get("expires_at"),
            detail={k: v for k, v in changes.items() if v},
        )
    return {
        "target": target,
        "client_id": client,
        **changes,
        "injected_at": now,
        "expires_at": profile.get("expires_at"),
    }


def _publish_if_pending(admin: LabAdmin, kid: str) -> bool:
    """Publish the recorded key if it is still the current, unpublished one (else it was
    published already, by its expiry or by hand, or a newer key replaced it — that newer
    key is not ours to touch and carries its own expiry)."""
    listed = admin.list_keys()
    pending = {k["kid"] for k in listed.get("keys", []) if not k.get("published")}
    if kid not in pending or listed.get("current_kid") != kid:
        return False
    return admin.publish_key().get("current_kid") == kid


def replay_token(
    role: str = "prober",
    replay_source_address: str = "127.0.0.2",
    owner_user_agent: str = "tokenslo-chaos/owner",
    replay_user_agent: str = "tokenslo-chaos/replayer",
    owner_calls: int = 3,
    configuration: Configuration | None = None,
) -> dict:
    """Token replay (guide failure F4) at the lab gateway: issue a token to the target's
    ``role`` client, call the API with it ``owner_calls`` times as its owner (this host's
    address, ``owner_user_agent``), then once from a second source (bound to
    ``replay_source_address``, another loopback address, with ``replay_user_agent``), as
    someone who copied it would. Lab only: the replay detection is the lab gateway's.
    Records the replay as the injection; returns the token's SHA-256 prefix, never the
    token."""
    resolved, run = _context(configuration)
    gateway = resolved.target.faults.get("gateway")
    if gateway is None or gateway.kind != "lab":
        raise InputError(
            "replay_token rehearses the lab gateway's replay detection "
            "(GatewayTokenReplaySuspected); this target has no lab gateway",
            file=resolved.target.source,
            field="faults.gateway",
        )
    calls = max(1, int(owner_calls))
    token, outcome = issue_token(resolved, role)
    if token is None:
        raise UnavailableError(f"could not issue a token for role {role}: {outcome}")
    owner = [api_call_from(resolved, token, owner_user_agent) for _ in range(calls)]
    if owner != [200] * calls:
        raise UnavailableError(f"the gateway did not accept the owner's calls: {owner}")
    replayed_at = run.mark(INJECTED_AT)
    replay = api_call_from(resolved, token, replay_user_agent, replay_source_address)
    if replay != 200:
        raise UnavailableError(f"the replay from {replay_source_address} got {replay}, not 200")
    return {
        "token_sha256_12": token_fingerprint(token),
        "owner_answers": owner,
        "replay_answer": replay,
        "replay_source_address": replay_source_address,
        "replayed_at": replayed_at,
    }


def _spawn(name: str, argv: list[str], run: runstate.RunState, log: str | None = None) -> dict:
    from tokenslo.prometheus.process import proc_start_time

    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    with interrupts_deferred():  # a child the run has not recorded could not be stopped
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        _CHILDREN[proc.pid] = proc
        record = {"pid": proc.pid, "start_time": proc_start_time(proc.pid), "argv0": argv[2]}
        run.processes[name] = record
        run.save()
    return record


def _stop_process(record: dict) -> bool:
    """Stop a process we started, by PID, only if the PID is still the same process."""
    from tokenslo.prometheus.process import pid_alive, proc_start_time, stop_pid

    pid = int(record["pid"])
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        if child.poll() is None:
            if record.get("group"):
                _signal_group(pid)  # Locust's own children too (same new session)
            stop_pid(pid, timeout=5, child=child)
        return True
    if pid_alive(pid) and proc_start_time(pid) == record.get("start_time"):
        stop_pid(pid, timeout=5)
        return True
    return False


def _signal_group(pid: int) -> None:
    """SIGTERM to the process group ``pid`` leads (we started it in its own session)."""
    import os
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)


def clear_faults(
    target: str = "idp", fault_ids: list | None = None, configuration: Configuration | None = None
) -> dict:
    """Remove the listed faults from ``target`` — or, with no ids, every fault and the
    clock offset there (whoever set them)."""
    resolved, run = _context(configuration)
    admin = _admin(resolved, target)
    if not fault_ids:
        cleared = admin.clear_faults()
        for change in run.active():
            if change.admin_url == admin.base_url and change.kind in ("fault", "clock"):
                change.cleared_at = time.time()
        run.mark(CLEARED_AT)
        return {"target": target, "cleared": cleared}
    active = {f["id"] for f in admin.list_faults().get("faults", [])}
    removed = []
    for fault_id in fault_ids:
        if str(fault_id) in active:
            admin.remove_fault(str(fault_id))
            removed.append(str(fault_id))
    run.mark(CLEARED_AT)
    return {"target": target, "cleared": len(removed), "ids": removed}


def clear_recorded_faults(configuration: Configuration | None = None) -> dict:
    """Rollback: undo exactly what this run set — its faults (by id), clock offsets,
    unpublished keys (published now) and token profiles. Faults that already expired are skipped."""
    resolved, run = _context(configuration)
    undone: list[dict] = []
    errors: list[str] = []
    by_url: dict[str, set[str]] = {}
    for change in run.active():
        try:
            _undo(resolved, change, by_url)
            undone.append({"kind": change.kind, "target": change.target, "ref": change.ref})
        except (UnavailableError, InputError) as exc:
            errors.append(f"{change.kind} {change.ref} on {change.target}: {exc}")
            continue
        change.cleared_at = time.time()
    if undone:
        run.mark(CLEARED_AT)
    run.save()
    if errors:
        raise RuntimeError(
            "rollback incomplete (faults still expire by themselves): " + "; ".join(errors)
        )
    return {"undone": undone, "count": len(undone)}


def _undo(resolved: targets.Targets, change: Change, by_url: dict[str, set[str]]) -> None:
    admin = LabAdmin(change.admin_url, resolved.admin_secret())
    if change.kind == "fault":
        if change.admin_url not in by_url:
            by_url[change.admin_url] = {f["id"] for f in admin.list_faults().get("faults", [])}
        if change.ref in by_url[change.admin_url]:
            admin.remove_fault(change.ref)
    elif change.kind == "clock":
        admin.clear_clock()
    elif change.kind == "key":
        _publish_if_pending(admin, change.ref)
    elif change.kind == "profile":
        admin.clear_token_profile(change.ref)


DRIVERS = ("loadgen", "locust")
DEFAULT_RATE = {"locust": 20.0, "loadgen": 5.0}
LOCUST_READY = "All users spawned"  # what Locust logs once every user runs
LOCUST_START_TIMEOUT = 30.0


def start_background_load(
    duration: float,
    rate: float = 0.0,
    driver: str = "locust",
    users: int = 10,
    scenario: str = "mixed",
    configuration: Configuration | None = None,
) -> dict:
    """Start bounded, paced background traffic for ``duration`` seconds (required, > 0);
    it stops by itself then, its PID is recorded and ``stop_background_load`` stops it
    earlier. ``driver: locust`` (default): ``tokenslo loadtest run --scenario <scenario>
    --users <users> --rate <rate>``, ``rate`` task runs/s in total (default 20; needs the
    lab state dir); returns once every user runs. The default 10 users leave each user
    500 ms per task, so a fault adding up to ~0.4 s of latency does not slow the load
    (a paced user cannot catch up a slow task: fewer requests under a latency fault
    would delay the alert beyond the theory, which assumes a steady rate).
    ``scenario: fresh-api`` takes a new token for every API call (key and clock faults
    then hit every validation); ``mixed`` reuses tokens like real clients.
    ``driver: loadgen``: a minimal stand-in without Locust: paced flows (issue a token
    and call the gateway with it, introspect, fetch the JWKS) at ``rate`` loops/s each
    (default 5)."""
    seconds = float(duration)
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_LOAD_SECONDS:
        raise ValueError(f"duration must be in (0, {MAX_LOAD_SECONDS:g}] seconds, got {duration!r}")
    if driver not in DRIVERS:
        raise ValueError(f"driver must be one of {', '.join(DRIVERS)}, got {driver!r}")
    pace = float(rate) or DEFAULT_RATE[driver]
    if not math.isfinite(pace) or pace <= 0:
        raise ValueError(f"rate must be > 0, got {rate!r}")
    resolved, run = _context(configuration)
    logs = _load_paths(resolved, run)
    resolved.target.client("load")  # no load client → bad input now, not a dead child later
    if driver == "locust":
        argv = _locust_argv(resolved, seconds, int(users), scenario, pace, logs)
    else:
        argv = [
            sys.executable, "-m", "tokenslo.chaos.loadgen",
            "--target-file", resolved.target.source,
            "--duration", str(seconds), "--rate", str(pace), "--stats", logs["stats"],
        ]  # fmt: skip
    record = _spawn("load", argv, run, log=logs["log"])
    record.update(duration=seconds, stats=logs["stats"], driver=driver, group=True)
    run.save()
    if driver == "locust":
        _wait_for_locust(record, logs)
    return {"pid": record["pid"], "duration": seconds, "driver": driver, "rate": pace,
            "users": int(users) if driver == "locust" else None,
            "scenario": scenario if driver == "locust" else None}  # fmt: skip


def _locust_argv(
    resolved: targets.Targets,
    seconds: float,
    users: int,
    scenario: str,
    rate: float,
    logs: dict[str, str],
) -> list[str]:
    from tokenslo.load.protocol import SCENARIO_NAMES

    if not 0 < users <= 100:
        raise ValueError(f"users must be in 1..100, got {users}")
    if scenario not in SCENARIO_NAMES:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIO_NAMES)}, got {scenario!r}")
    return [
        sys.executable, "-m", "tokenslo", "loadtest", "run", "--scenario", scenario,
        "--users", str(users), "--spawn-rate", str(users), "--rate", f"{rate:g}",
        "--duration", f"{math.ceil(seconds)}s",
        "--target", resolved.target.source, "--gate", *resolved.slo_paths,
        "--settle", "0s", "--workdir", logs["workdir"], "--json", logs["stats"],
    ]  # fmt: skip


def _wait_for_locust(record: dict, logs: dict[str, str]) -> None:
    """Return once Locust runs every user (its log says so), so a fault injected next
    meets steady load; a Locust that exits or never gets there is stopped and reported."""
    from pathlib import Path

    log = Path(logs["workdir"]) / "locust.log"
    child = _CHILDREN.get(int(record["pid"]))
    deadline = time.monotonic() + LOCUST_START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if LOCUST_READY in log.read_text(encoding="utf-8", errors="replace"):
                return
        if child is not None and child.poll() is not None:
            break
        time.sleep(0.2)
    _stop_process(record)
    tail = ""
    with contextlib.suppress(OSError):
        tail = Path(logs["log"]).read_text(encoding="utf-8", errors="replace")[-300:]
    raise RuntimeError(
        f"background load (Locust) did not start within {LOCUST_START_TIMEOUT:g} s: "
        + " ".join(tail.split())
    )


def _load_paths(resolved: targets.Targets, run: runstate.RunState) -> dict[str, str]:

    base = resolved.state_dir / runstate.RUNS_DIR
    base.mkdir(parents=True, exist_ok=True)
    return {
        "stats": str(base / f"{run.run_id}-load.json"),
        "log": str(base / f"{run.run_id}-load.log"),
        "workdir": str(base / f"{run.run_id}-locust"),
    }


def stop_background_load(configuration: Configuration | None = None) -> dict:
    """Stop the background load this run started (by its recorded PID) and return
    its client-side counts (e.g. connection errors the server never saw)."""
    import json
    from pathlib import Path

    _resolved, run = _context(configuration)
    record = run.processes.get("load")
    if not record:
        return {"stopped": False, "reason": "no background load was started"}
    stopped = _stop_process(record)
    counts: dict = {}
    with contextlib.suppress(OSError, ValueError, KeyError, AttributeError):
        stats = json.loads(Path(record["stats"]).read_text(encoding="utf-8"))
        counts = (
            stats.get("counts", {})
            if record.get("driver") != "locust"
            else {"verdict": stats.get("verdict")}
        )
    run.processes.pop("load", None)
    run.save()
    return {"stopped": stopped, "client_counts": counts}
