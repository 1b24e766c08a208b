"""Lab configuration: package defaults (``lab.default.yaml``) merged with the user's file.

One frozen ``LabConfig``; every bad value raises ``InputError`` naming the file,
line and dotted field, so ``tokenslo lab up --config x.yaml`` fails in one line
before anything is started.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tokenslo.core.durations import parse_duration
from tokenslo.errors import InputError
from tokenslo.lab.idp.config import YamlDoc, load_yaml

DEFAULT_CONFIG = "lab.default.yaml"
PORT_KEYS = ("idp", "gateway", "webhook", "prometheus", "alertmanager", "prober")
TOP_KEYS = (
    "ports",
    "prometheus",
    "slo_paths",
    "rules_time_scale",
    "extra_rule_files",
    "startup_timeout",
    "idp",
    "gateway",
)
PROMETHEUS_KEYS = ("scrape_interval", "evaluation_interval")
# Set by the orchestrator (ports, files, issuer); users change them via ``ports`` instead.
IDP_RESERVED = ("host", "port", "issuer", "keys_file", "clients_file")
GATEWAY_RESERVED = ("host", "port", "issuer", "credentials_file")


@dataclass(frozen=True)
class Ports:
    idp: int = 9400
    gateway: int = 9401
    webhook: int = 9402
    prometheus: int = 9490
    alertmanager: int = 9493
    prober: int | None = None

    def items(self) -> list[tuple[str, int]]:
        """(config key, port) for every port the lab listens on or scrapes."""
        return [(k, getattr(self, k)) for k in PORT_KEYS if getattr(self, k) is not None]


@dataclass(frozen=True)
class LabConfig:
    ports: Ports = field(default_factory=Ports)
    scrape_interval: float = 1.0
    evaluation_interval: float = 1.0
    slo_paths: tuple[str, ...] = ("slo/",)
    rules_time_scale: float = 1.0
    extra_rule_files: tuple[str, ...] = ()
    startup_timeout: float = 30.0
    idp: dict[str, Any] = field(default_factory=dict)
    gateway: dict[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    def with_ports(self, **ports: int | None) -> LabConfig:
        changes: dict[str, Any] = ports  # by field name, which mypy cannot match to Ports
        return replace(self, ports=replace(self.ports, **changes))


def default_document() -> YamlDoc:
    path = resources.files("tokenslo.lab").joinpath(DEFAULT_CONFIG)
    with resources.as_file(path) as real:
        return load_yaml(real)


def load_lab_config(path: str | Path | None = None) -> LabConfig:
    """Defaults, overridden key by key by ``path`` when given."""
    defaults = default_document()
    if path is None:
        return replace(parse_lab_config(defaults, defaults.data), source="<defaults>")
    doc = load_yaml(path)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.error("the lab config must be a YAML mapping", ())
    return parse_lab_config(doc, _merge(defaults.data, data))


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_lab_config(doc: YamlDoc, data: dict[str, Any]) -> LabConfig:
    """Validate merged settings; errors point into ``doc`` (the user's file)."""
    _no_unknown(doc, data, TOP_KEYS, ())
    ports = _ports(doc, data.get("ports"))
    prom = _mapping(doc, data, "prometheus")
    _no_unknown(doc, prom, PROMETHEUS_KEYS, ("prometheus",))
    scrape = _duration(doc, prom, "scrape_interval", ("prometheus",))
    evaluation = _duration(doc, prom, "evaluation_interval", ("prometheus",))
    scale = _number(doc, data, "rules_time_scale", ())
    if scale < 1:
        raise _fail(doc, ("rules_time_scale",), "must be >= 1 (1 = real time)")
    timeout = _number(doc, data, "startup_timeout", ())
    idp = _mapping(doc, data, "idp")
    gateway = _mapping(doc, data, "gateway")
    _no_reserved(doc, idp, IDP_RESERVED, "idp")
    _no_reserved(doc, gateway, GATEWAY_RESERVED, "gateway")
    return LabConfig(
        ports=ports,
        scrape_interval=scrape,
        evaluation_interval=evaluation,
        slo_paths=_strings(doc, data, "slo_paths"),
        rules_time_scale=scale,
        extra_rule_files=_strings(doc, data, "extra_rule_files"),
        startup_timeout=timeout,
        idp=dict(idp),
        gateway=dict(gateway),
        source=doc.file,
    )


def _fail(doc: YamlDoc, path: tuple, message: str) -> InputError:
    return doc.error(message, path, ".".join(str(p) for p in path) or None)


def _no_unknown(doc: YamlDoc, data: dict, allowed: tuple[str, ...], path: tuple) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(
                doc, (*path, key), f"unknown setting (expected one of {', '.join(allowed)})"
            )


def _no_reserved(doc: YamlDoc, data: dict, reserved: tuple[str, ...], section: str) -> None:
    for key in data:
        if key in reserved:
            raise _fail(
                doc, (section, key), "is set by the lab itself (change `ports` in the lab config)"
            )


def _mapping(doc: YamlDoc, data: dict, key: str) -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(doc, (key,), "must be a mapping")
    return value


def _ports(doc: YamlDoc, value: Any) -> Ports:
    if not isinstance(value, dict):
        raise _fail(doc, ("ports",), "must be a mapping of component → port")
    _no_unknown(doc, value, PORT_KEYS, ("ports",))
    ports: dict[str, Any] = {}  # int | None each, by field name (mypy matches no ** to Ports)
    for key in PORT_KEYS:
        port = value.get(key)
        if port is None and key == "prober":
            ports[key] = None
            continue
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise _fail(doc, ("ports", key), f"must be a port number 1-65535, got {port!r}")
        ports[key] = port
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port is not None and port in seen:
            # Blame the key the user wrote, not the default it collides with.
            first = seen[port]
            blamed, other = (first, key) if ("ports", first) in doc.lines else (key, first)
            raise _fail(doc, ("ports", blamed), f"port {port} is also used by ports.{other}")
        if port is not None:
            seen[port] = key
    return Ports(**ports)


def _duration(doc: YamlDoc, data: dict, key: str, path: tuple) -> float:
    value = data.get(key)
    try:
        seconds = parse_duration(value) if isinstance(value, str) else float("nan")
    except ValueError as exc:
        raise _fail(doc, (*path, key), str(exc)) from None
    if not seconds > 0:
        raise _fail(doc, (*path, key), f"must be a duration such as 1s or 15s, got {value!r}")
    return seconds


def _number(doc: YamlDoc, data: dict, key: str, path: tuple) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _fail(doc, (*path, key), f"must be a positive number, got {value!r}")
    return float(value)


def _strings(doc: YamlDoc, data: dict, key: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(doc, (key,), "must be a list of paths")
    return tuple(value)


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)
