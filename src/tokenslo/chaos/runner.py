"""``tokenslo chaos run``: check an experiment, run it with the real ``chaos run``, judge it.

Steps, each with its own exit code (README):

1. **Pre-checks** (exit 2): the file parses; every fault action has a positive
   ``expires_in``; an experiment that injects faults or starts load also rolls
   them back; then ``chaos validate`` itself.
2. **Reachability** (exit 3): the lab (or the configured targets) and Prometheus
   answer before anything is injected.
3. **Run**: ``chaos run --rollback-strategy always``. Chaos Toolkit's default
   strategy skips the rollbacks of a run that failed or was interrupted, which is
   exactly when a fault is most likely still active; ``always`` plays them in
   every case. SIGINT/SIGTERM to us are forwarded so the rollbacks still run.
4. **Verdict** from the journal (``tokenslo.chaos.journal``): 0 held, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenslo.chaos import journal as journal_mod
from tokenslo.chaos import targets
from tokenslo.chaos.runstate import RUN_ID_ENV
from tokenslo.errors import InputError, UnavailableError
from tokenslo.signals import interrupts_ignored, interrupts_raise
from tokenslo.spec.yamlpos import Document, load_documents, read_text

ROLLBACK_STRATEGY = "always"
TARGET_FILE_ENV = "TOKENSLO_TARGET_FILE"  # what the experiments' tokenslo_target_file reads
SLO_PATHS_ENV = "TOKENSLO_SLO_PATHS"
ACTIONS_MODULE = "tokenslo.chaos.actions"
EXPIRING_ACTIONS = {"inject_http_fault", "set_clock_offset", "set_token_profile"}
FAULT_ACTIONS = EXPIRING_ACTIONS | {"rotate_signing_key"}
FAULT_ROLLBACKS = {"clear_recorded_faults", "clear_faults"}
DEFAULT_TIMEOUT = 1800.0
ROLLBACK_GRACE = 90.0  # after forwarding SIGINT, time left for the rollbacks
_VAR = re.compile(r"^\$\{([^}]+)\}$")


@dataclass
class RunResult:
    verdict: journal_mod.Verdict
    journal_path: Path
    returncode: int  # of `chaos run`
    output: str = ""  # captured chaos output (when captured)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code


# -- 1. pre-checks ------------------------------------------------------------------------------


def load_experiment(path: str | Path) -> Document:
    file = str(path)
    docs = load_documents(read_text(path), file)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise InputError("an experiment is one YAML/JSON mapping", file=file)
    doc = docs[0]
    for key in ("title", "method"):
        if key not in doc.data:
            raise doc.error(f"missing {key!r}", (), key=False)
    if not isinstance(doc.data["method"], list) or not doc.data["method"]:
        raise doc.error("must be a non-empty list of activities", ("method",))
    return doc


def resolve_configuration(
    declared: Mapping[str, Any] | None, env: Mapping[str, str], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The experiment's configuration as Chaos Toolkit will see it (env entries
    resolved, ``--var`` values winning); unresolvable env entries are left out."""
    resolved: dict[str, Any] = {}
    for key, value in (declared or {}).items():
        if isinstance(value, dict) and value.get("type") == "env":
            if value.get("key") in env:
                resolved[key] = env[value["key"]]
            elif "default" in value:
                resolved[key] = value["default"]
        else:
            resolved[key] = value
    resolved.update(overrides)
    return resolved


def _substituted(value: Any, configuration: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and (match := _VAR.match(value.strip())):
        return configuration.get(match.group(1), value)
    return value


def _activities(doc: Document) -> list[tuple[tuple, dict]]:
    found: list[tuple[tuple, dict]] = []
    hypothesis = doc.data.get("steady-state-hypothesis") or {}
    for i, probe in enumerate(hypothesis.get("probes") or []):
        found.append((("steady-state-hypothesis", "probes", i), probe))
    for section in ("method", "rollbacks"):
        for i, activity in enumerate(doc.data.get(section) or []):
            found.append(((section, i), activity))
    return [(path, a) for path, a in found if isinstance(a, dict)]


def _tokenslo_func(activity: dict, module: str) -> str | None:
    provider = activity.get("provider")
    if (
        isinstance(provider, dict)
        and provider.get("type") == "python"
        and provider.get("module") == module
    ):
        return str(provider.get("func"))
    return None


def check_expiries(doc: Document, configuration: Mapping[str, Any]) -> None:
    """Every fault action carries a positive ``expires_in`` (an unpublished rotation too)."""
    for path, activity in _activities(doc):
        func = _tokenslo_func(activity, ACTIONS_MODULE)
        if func not in FAULT_ACTIONS:
            continue
        args = activity["provider"].get("arguments") or {}
        if func == "rotate_signing_key" and _substituted(args.get("publish", True), configuration):
            continue
        where = (*path, "provider", "arguments")
        if "expires_in" not in args:
            raise doc.error(
                f"{func} needs expires_in (seconds > 0): every fault must expire", where
            )
        value = _substituted(args["expires_in"], configuration)
        if isinstance(value, str) and _VAR.match(value.strip()):
            continue  # an unresolved variable: the action itself refuses a bad value
        try:
            ok = not isinstance(value, bool) and float(value) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise doc.error(
                f"expires_in must be a number of seconds > 0, got {value!r}",
                (*where, "expires_in"),
            )


def check_rollbacks(doc: Document) -> None:
    """What the method sets, the rollbacks undo (they run even after a failure)."""
    method = [_tokenslo_func(a, ACTIONS_MODULE) for _p, a in _activities(doc) if _p[0] == "method"]
    rollbacks = {
        _tokenslo_func(a, ACTIONS_MODULE)
        for a in doc.data.get("rollbacks") or []
        if isinstance(a, dict)
    }
    if FAULT_ACTIONS & set(method) and not FAULT_ROLLBACKS & rollbacks:
        raise doc.error(
            "the method injects faults but no rollback clears them "
            "(add tokenslo.chaos.actions.clear_recorded_faults)",
            ("rollbacks",) if "rollbacks" in doc.data else (),
        )
    if "start_background_load" in method and "stop_background_load" not in rollbacks:
        raise doc.error(
            "the method starts background load but no rollback stops it "
            "(add tokenslo.chaos.actions.stop_background_load)",
            ("rollbacks",) if "rollbacks" in doc.data else (),
        )


def precheck(path: str | Path, overrides: Mapping[str, Any], env: Mapping[str, str]) -> Document:
    doc = load_experiment(path)
    configuration = resolve_configuration(doc.data.get("configuration"), env, overrides)
    check_expiries(doc, configuration)
    check_rollbacks(doc)
    return doc


def chaos_command() -> list[str]:
    """The venv's ``chaos`` CLI, never a network version check, never ~/.chaostoolkit."""
    script = Path(sys.executable).parent / "chaos"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "chaostoolkit"]
    return [*base, "--no-version-check"]


def chaos_validate(path: str | Path, timeout: float = 120.0) -> None:
    """``chaos validate``; its complaint becomes one InputError line (exit 2)."""
    with _scratch() as scratch:
        argv = [
            *chaos_command(),
            "--no-log-file",
            "--settings",
            str(scratch / "settings.yaml"),
            "validate",
            str(path),
        ]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise InputError(
            f"chaos validate failed: {_chaos_error(proc.stdout + proc.stderr)}", file=str(path)
        )


@contextlib.contextmanager
def _scratch():
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tokenslo-chaos-") as tmp:
        yield Path(tmp)


def _chaos_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "rror" in line]
    chosen = (errors or lines or ["no output"])[-1]
    return re.sub(r"^\[[^\]]*\]\s*(ERROR\s*)?", "", chosen)[:300]


# -- 2. reachability ----------------------------------------------------------------------------


def check_reachable(configuration: Mapping[str, Any]) -> targets.Targets:
    """The target's IdP (by discovery, through its proxy if any), its API and Prometheus
    answer; else UnavailableError (exit 3). Only what the target declares is checked."""
    resolved = targets.resolve(configuration)
    resolved.endpoints()  # discovery: the IdP (or its proxy) answers with valid metadata
    if resolved.has("api") and not targets.answers(resolved.url("api")):
        raise UnavailableError(f"the API at {resolved.url('api')} does not answer")
    prometheus = resolved.url("prometheus")
    if not targets.wait_healthy(prometheus + "/-/ready", timeout=3.0):
        raise UnavailableError(f"Prometheus at {prometheus} is not ready")
    return resolved


# -- 3. run -------------------------------------------------------------------------------------


def parse_vars(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--var must be key=value, got {pair!r}", field="--var")
        out[key.strip()] = value
    return out


def _typed(overrides: Mapping[str, str]) -> dict[str, Any]:
    """``key:float=1`` as Chaos Toolkit reads it, for our own pre-checks."""
    typed: dict[str, Any] = {}
    for key, value in overrides.items():
        name, _sep, kind = key.partition(":")
        try:
            typed[name] = {"int": int, "float": float}.get(kind, str)(value)
        except ValueError:
            raise InputError(f"--var {key}: not a {kind}: {value!r}", field="--var") from None
    return typed


def run_experiment(
    path: str | Path,
    *,
    target_file: str | Path | None = None,
    journal_path: str | Path | None = None,
    variables: Mapping[str, str] | None = None,
    slo_paths: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    capture: bool = False,
    validate: bool = True,
) -> RunResult:
    """Pre-check, check reachability, run ``chaos run`` and judge its journal."""
    variables = dict(variables or {})
    env = dict(os.environ)
    if target_file is not None:
        env[TARGET_FILE_ENV] = str(Path(target_file).resolve())
    if slo_paths:
        env[SLO_PATHS_ENV] = ",".join(str(Path(p).resolve()) for p in slo_paths)
    overrides = _typed(variables)
    doc = precheck(path, overrides, env)
    if validate:
        chaos_validate(path)
    configuration = resolve_configuration(doc.data.get("configuration"), env, overrides)
    check_reachable(configuration)
    journal_file = Path(journal_path or f"journal-{Path(path).stem}.json").resolve()
    journal_file.parent.mkdir(parents=True, exist_ok=True)
    journal_file.unlink(missing_ok=True)
    run_id = f"{int(time.time())}-{Path(path).stem}-{uuid.uuid4().hex[:6]}"
    env[RUN_ID_ENV] = run_id
    argv = [
        *chaos_command(),
        "--log-file",
        str(journal_file.with_suffix(".log")),
        "--settings",
        str(journal_file.with_suffix(".settings.yaml")),
        "run",
        "--rollback-strategy",
        ROLLBACK_STRATEGY,
        "--journal-path",
        str(journal_file),
        "--no-validation" if validate else "",
        *[arg for key, value in variables.items() for arg in ("--var", f"{key}={value}")],
        str(Path(path).resolve()),
    ]
    argv = [a for a in argv if a]
    returncode, output, stopped = _supervise(argv, env, timeout, capture)
    data = read_journal(journal_file)
    verdict = journal_mod.verdict(data)
    if stopped:
        verdict = interrupted_verdict(verdict)
    return RunResult(
        verdict=verdict,
        journal_path=journal_file,
        returncode=returncode,
        output=output,
        extra={"run_id": run_id, "title": doc.data.get("title", "")},
    )


def interrupted_verdict(verdict: journal_mod.Verdict) -> journal_mod.Verdict:
    """The verdict of a run we stopped (Ctrl-C, SIGTERM, SIGHUP). Chaos Toolkit marks its
    journal interrupted only when the SIGINT lands inside an activity; one that lands in
    a pause or the rollbacks leaves "completed", and a stopped game day must not read
    that as a finished experiment and go on to the next."""
    if verdict.outcome in ("interrupted", "aborted"):
        return verdict
    reasons = [*verdict.reasons, f"stopped by a signal (journal status {verdict.status})"]
    return replace(verdict, outcome="interrupted", reasons=reasons)


def _supervise(argv: list[str], env: dict, timeout: float, capture: bool) -> tuple[int, str, bool]:
    """Run ``chaos``; on timeout, Ctrl-C or SIGTERM, forward SIGINT so it plays its
    rollbacks, then escalate only if it does not finish within the grace period.
    Returns (exit code, captured output, whether a stop signal ended it)."""
    out = subprocess.PIPE if capture else None
    # Own session: a terminal's Ctrl-C reaches only us, and we forward exactly one
    # SIGINT (a second one would cut the rollbacks short). Parent-death signal: if we
    # are SIGKILLed, chaos dies too instead of living on unsupervised; the faults it
    # set then expire on the server by themselves.
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT if capture else None,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        with interrupts_raise():
            output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with interrupts_ignored():
            _interrupt(proc)
            output, _ = proc.communicate()
        return proc.returncode, (output or "") + f"\n[tokenslo] timed out after {timeout:g}s", False
    except KeyboardInterrupt:
        with interrupts_ignored():
            _interrupt(proc)  # rollbacks run; the journal may still say "completed"
            output, _ = proc.communicate()
        return proc.returncode, (output or "") + "\n[tokenslo] interrupted", True
    return proc.returncode, output or "", False


def _die_with_parent() -> None:
    """Linux PR_SET_PDEATHSIG(SIGKILL) in the child; a no-op elsewhere."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def _interrupt(proc: subprocess.Popen) -> None:
    """SIGINT (rollbacks still run), then SIGTERM, then SIGKILL: each by PID."""
    for sig, grace in ((signal.SIGINT, ROLLBACK_GRACE), (signal.SIGTERM, 10.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def read_journal(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {
            "status": "failed",
            "deviated": False,
            "run": [],
            "rollbacks": [],
            "steady_states": {},
            "_note": "chaos run wrote no journal",
        }
    except ValueError:
        raise UnavailableError(f"unreadable journal {path}") from None
    return data if isinstance(data, dict) else {"status": "failed"}


# -- listing ------------------------------------------------------------------------------------


def list_experiments(directory: str | Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted(Path(directory).glob("*.y*ml")):
        try:
            doc = load_experiment(path)
            rows.append({"file": str(path), "title": str(doc.data.get("title", ""))})
        except InputError as exc:
            rows.append({"file": str(path), "title": f"(invalid: {exc})"})
    return rows
