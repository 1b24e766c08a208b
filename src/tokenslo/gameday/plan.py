"""The game-day file (``gameday.yaml``) and the bundled default, as one frozen ``GameDayPlan``.

Parsing is pure (text in, plan out); every bad value raises ``InputError`` naming
the file, line and dotted field, so a broken game day fails in one line before
anything is started. Relative paths are kept as written and resolve against the
current directory, like the lab config's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, overload

from tokenslo.core.durations import parse_duration
from tokenslo.errors import InputError
from tokenslo.spec.yamlpos import Document, load_documents, read_text

DEFAULT_FILE = "default.yaml"
VERSION = 1
KINDS = ("lab", "external")
OUTCOMES = ("held", "deviated")
DRIVERS = ("loadgen", "locust", "none")
TOP_KEYS = (
    "version",
    "title",
    "target",
    "time_scale",
    "slo_paths",
    "experiments_dir",
    "load",
    "recovery_timeout",
    "experiments",
)
TARGET_KEYS = ("kind", "lab_config", "file")
LOAD_KEYS = ("driver", "rate", "users", "scenario", "warmup")
EXPERIMENT_KEYS = ("name", "file", "expect", "alerts", "vars", "timeout", "extended")
SEVERITIES = ("page", "ticket")
MAX_TIMEOUT = 7200.0


@dataclass(frozen=True)
class Target:
    kind: str  # lab | external
    lab_config: str | None = None  # lab: its config file (default: the bundled one)
    file: str | None = None  # external: the target description (docs/target.md)


@dataclass(frozen=True)
class LoadProfile:
    driver: str = "loadgen"
    rate: float | None = None  # locust: task runs/s in total; loadgen: loops/s per flow;
    # None: the chaos action's default for the driver
    users: int = 2  # locust
    scenario: str = "mixed"  # locust
    warmup: float = 10.0  # seconds of load before the first experiment


@dataclass(frozen=True)
class ExperimentPlan:
    name: str
    file: str
    expect: str  # held | deviated
    alerts: tuple[str, ...] | None = None  # "slo/severity"; None: the file's wait_for_alert probes
    vars: dict[str, str] = field(default_factory=dict)
    timeout: float = 300.0
    extended: bool = False  # only with --all


@dataclass(frozen=True)
class GameDayPlan:
    title: str
    target: Target
    time_scale: float
    slo_paths: tuple[str, ...]
    load: LoadProfile
    experiments: tuple[ExperimentPlan, ...]
    recovery_timeout: float = 120.0
    source: str = "<default>"

    def selected(self, include_extended: bool) -> tuple[ExperimentPlan, ...]:
        """The experiments of this run: the core ones, plus the extended with ``--all``."""
        return tuple(e for e in self.experiments if include_extended or not e.extended)


# ---------------------------------------------------------------- loading (edge)


def load_plan(path: str | Path | None = None) -> GameDayPlan:
    """The game day in ``path``, or the bundled default when None."""
    if path is None:
        ref = resources.files("tokenslo.gameday").joinpath(DEFAULT_FILE)
        return parse_plan(ref.read_text(encoding="utf-8"), "<default>")
    return parse_plan(read_text(path), str(path))


# ---------------------------------------------------------------- parsing (pure)


def parse_plan(text: str, file: str) -> GameDayPlan:
    docs = load_documents(text, file)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise InputError("a game day file is one YAML mapping", file=file)
    doc = docs[0]
    data = doc.data
    _no_unknown(doc, data, TOP_KEYS, ())
    version = data.get("version", VERSION)
    if version != VERSION:
        raise doc.error(f"unsupported version {version!r} (expected {VERSION})", ("version",))
    target = _target(doc, data.get("target"))
    default_scale = 60.0 if target.kind == "lab" else 1.0
    scale = _number(doc, data, ("time_scale",), default_scale, minimum=1.0)
    experiments_dir = _string(doc, data, ("experiments_dir",), "experiments")
    experiments = _experiments(doc, data.get("experiments"), experiments_dir)
    load = _load(doc, data.get("load"))
    return GameDayPlan(
        title=_string(doc, data, ("title",), "Game day"),
        target=target,
        time_scale=scale,
        slo_paths=_paths(doc, data, ("slo_paths",), ("slo/",)),
        load=load,
        experiments=experiments,
        recovery_timeout=_duration(doc, data, ("recovery_timeout",), 120.0),
        source=file,
    )


def _target(doc: Document, value: Any) -> Target:
    if value is None:
        return Target(kind="lab")
    _section(doc, value, TARGET_KEYS, ("target",))
    kind = _choice(doc, value, ("target", "kind"), KINDS, "lab")
    lab_config = _string(doc, value, ("target", "lab_config"), None)
    file = _string(doc, value, ("target", "file"), None)
    if kind == "external" and file is None:
        raise doc.error("an external target needs file (a target description)", ("target",))
    if kind == "external" and lab_config is not None:
        raise doc.error("only for kind: lab", ("target", "lab_config"))
    if kind == "lab" and file is not None:
        raise doc.error("only for kind: external (the lab writes its own)", ("target", "file"))
    return Target(kind=kind, lab_config=lab_config, file=file)


def _load(doc: Document, value: Any) -> LoadProfile:
    if value is None:
        return LoadProfile()
    _section(doc, value, LOAD_KEYS, ("load",))
    driver = _choice(doc, value, ("load", "driver"), DRIVERS, "loadgen")
    rate = None
    if value.get("rate") is not None:
        rate = _number(doc, value, ("load", "rate"), 0, minimum=0.1, maximum=1000.0)
    users = _number(doc, value, ("load", "users"), 2, minimum=1, maximum=100)
    if users != int(users):
        raise doc.error(f"must be a whole number, got {users!r}", ("load", "users"))
    return LoadProfile(
        driver=driver,
        rate=rate,
        users=int(users),
        scenario=_string(doc, value, ("load", "scenario"), "mixed"),
        warmup=_duration(doc, value, ("load", "warmup"), 10.0, allow_zero=True),
    )


def _experiments(doc: Document, value: Any, experiments_dir: str) -> tuple[ExperimentPlan, ...]:
    if not isinstance(value, list) or not value:
        raise doc.error("must be a non-empty list of experiments", ("experiments",))
    plans = []
    seen: set[str] = set()
    for index, item in enumerate(value):
        plan = _experiment(doc, item, ("experiments", index), experiments_dir)
        if plan.name in seen:
            raise doc.error(f"experiment {plan.name!r} is listed twice", ("experiments", index))
        seen.add(plan.name)
        plans.append(plan)
    return tuple(plans)


def _experiment(doc: Document, item: Any, path: tuple, experiments_dir: str) -> ExperimentPlan:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise doc.error("must be a mapping with name (or file) and expect", path)
    _no_unknown(doc, item, EXPERIMENT_KEYS, path)
    name = _string(doc, item, (*path, "name"), None)
    file = _string(doc, item, (*path, "file"), None)
    if name is None and file is None:
        raise doc.error("needs name (an experiment in experiments_dir) or file", path)
    if file is None:
        file = str(Path(experiments_dir) / f"{name}.yaml")
    name = name or Path(file).stem
    expect = _choice(doc, item, (*path, "expect"), OUTCOMES, "held")
    return ExperimentPlan(
        name=name,
        file=file,
        expect=expect,
        alerts=_alerts(doc, item, (*path, "alerts")),
        vars=_vars(doc, item.get("vars"), (*path, "vars")),
        timeout=_duration(doc, item, (*path, "timeout"), 300.0, maximum=MAX_TIMEOUT),
        extended=_bool(doc, item, (*path, "extended"), False),
    )


def _alerts(doc: Document, item: dict, path: tuple) -> tuple[str, ...] | None:
    if "alerts" not in item:
        return None
    value = item["alerts"]
    if value is None:
        return ()
    if not isinstance(value, list):
        raise doc.error("must be a list such as [token-issuance-availability/page]", path)
    out = []
    for index, entry in enumerate(value):
        slo, sep, severity = str(entry).partition("/")
        if not isinstance(entry, str) or not sep or not slo or severity not in SEVERITIES:
            raise doc.error(f"must be <slo>/<page|ticket>, got {entry!r}", (*path, index))
        out.append(entry)
    return tuple(out)


def _vars(doc: Document, value: Any, path: tuple) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error("must be a mapping of configuration key → value", path)
    out = {}
    for key, raw in value.items():
        if not isinstance(key, str) or not key or isinstance(raw, dict | list) or raw is None:
            raise doc.error("must be a scalar value", (*path, str(key)))
        out[_typed_key(key, raw)] = str(raw).lower() if isinstance(raw, bool) else str(raw)
    return out


def typed_vars(variables: dict[str, str]) -> dict[str, Any]:
    """``{"k:int": "1"}`` → ``{"k": 1}``: the values ``chaos run --var`` will see."""
    kinds = {"int": int, "float": float}
    out: dict[str, Any] = {}
    for key, value in variables.items():
        name, _sep, kind = key.partition(":")
        out[name] = kinds.get(kind, str)(value)
    return out


def _typed_key(key: str, raw: Any) -> str:
    """``chaos run --var k:int=1`` keeps numbers numbers (the probes compute with them)."""
    if ":" in key or isinstance(raw, bool):
        return key
    if isinstance(raw, int):
        return f"{key}:int"
    return f"{key}:float" if isinstance(raw, float) else key


# ---------------------------------------------------------------- scalar helpers


def _no_unknown(doc: Document, data: dict, allowed: tuple[str, ...], path: tuple) -> None:
    for key in data:
        if key not in allowed:
            raise doc.error(
                f"unknown setting (expected one of {', '.join(allowed)})", (*path, key), key=True
            )


def _section(doc: Document, value: Any, allowed: tuple[str, ...], path: tuple) -> None:
    """An optional section of the plan, when present: a mapping of known settings only."""
    if not isinstance(value, dict):
        raise doc.error("must be a mapping", path)
    _no_unknown(doc, value, allowed, path)


def _choice(doc: Document, data: dict, path: tuple, choices: tuple[str, ...], default: str) -> str:
    value = data.get(path[-1], default)
    if value not in choices:
        raise doc.error(f"must be one of {', '.join(choices)}, got {value!r}", path)
    return value


@overload
def _string(doc: Document, data: dict, path: tuple, default: str) -> str: ...
@overload
def _string(doc: Document, data: dict, path: tuple, default: None) -> str | None: ...
def _string(doc: Document, data: dict, path: tuple, default: str | None) -> str | None:
    value = data.get(path[-1])
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise doc.error(f"must be a non-empty string, got {value!r}", path)
    return value.strip()


def _paths(doc: Document, data: dict, path: tuple, default: tuple[str, ...]) -> tuple[str, ...]:
    value = data.get(path[-1])
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise doc.error("must be a non-empty list of paths", path)
    return tuple(v.strip() for v in value)


def _number(
    doc: Document,
    data: dict,
    path: tuple,
    default: float,
    *,
    minimum: float,
    maximum: float = math.inf,
) -> float:
    value = data.get(path[-1], default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise doc.error(f"must be a number, got {value!r}", path)
    if not minimum <= value <= maximum:
        bound = (
            f"between {minimum:g} and {maximum:g}"
            if math.isfinite(maximum)
            else (f">= {minimum:g}")
        )
        raise doc.error(f"must be {bound}, got {value!r}", path)
    return float(value)


def _duration(
    doc: Document,
    data: dict,
    path: tuple,
    default: float,
    *,
    allow_zero: bool = False,
    maximum: float = MAX_TIMEOUT,
) -> float:
    value = data.get(path[-1])
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(value) if isinstance(value, int | float) else parse_duration(str(value))
    except ValueError:
        raise doc.error(f"must be a duration such as 30s or 2m, got {value!r}", path) from None
    low_ok = seconds >= 0 if allow_zero else seconds > 0
    if not low_ok or seconds > maximum:
        raise doc.error(
            f"must be {'>= 0' if allow_zero else '> 0'} and at most {maximum:g}s, got {value!r}",
            path,
        )
    return seconds


def _bool(doc: Document, data: dict, path: tuple, default: bool) -> bool:
    value = data.get(path[-1], default)
    if not isinstance(value, bool):
        raise doc.error(f"must be true or false, got {value!r}", path)
    return value


# ---------------------------------------------------------------- experiment files (pure)

PROBES_MODULE = "tokenslo.chaos.probes"


def alerts_in_experiment(data: dict) -> tuple[str, ...]:
    """``slo/severity`` of every alert the experiment's method waits for (``wait_for_alert``):
    what a game day expects to fire unless its file lists ``alerts`` itself."""
    found: list[str] = []
    for activity in data.get("method") or []:
        provider = activity.get("provider") if isinstance(activity, dict) else None
        if not isinstance(provider, dict) or provider.get("module") != PROBES_MODULE:
            continue
        if provider.get("func") != "wait_for_alert":
            continue
        args = provider.get("arguments") or {}
        key = f"{args.get('slo')}/{args.get('severity', 'page')}"
        if args.get("slo") and key not in found:
            found.append(key)
    return tuple(found)


def expected_alerts(plan: ExperimentPlan, experiment_data: dict) -> tuple[str, ...]:
    return plan.alerts if plan.alerts is not None else alerts_in_experiment(experiment_data)
