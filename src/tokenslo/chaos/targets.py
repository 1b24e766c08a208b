"""Where the probes and actions point: one target description, SLOs and the time scale.

An experiment declares ``tokenslo_target_file`` (env ``TOKENSLO_TARGET_FILE``; empty:
the running lab's ``target.yaml``), read by :mod:`tokenslo.target`, so the same
experiment file runs against the lab and against a real IdP behind ``tokenslo proxy``.
Secrets are only read through :mod:`tokenslo.target.credentials` when needed, never
returned or logged.

The time scale of the loaded alert rules is read from Prometheus itself (the
``for`` of the fastest burn-rate alert against its nominal value), so the expected
detection times always match the rules Prometheus really evaluates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from tokenslo.core import burnrate
from tokenslo.core.durations import parse_duration
from tokenslo.core.model import SLO
from tokenslo.core.timescale import scale_between
from tokenslo.errors import InputError, UnavailableError
from tokenslo.prometheus.client import PromClient
from tokenslo.rules import conventions as c
from tokenslo.target import discovery
from tokenslo.target.credentials import Credentials, credentials
from tokenslo.target.loader import load_target
from tokenslo.target.model import Target
from tokenslo.waiting import wait_until

# Configuration keys an experiment declares (Chaos Toolkit passes --var only to declared keys).
TARGET_FILE_KEY = "tokenslo_target_file"
TIME_SCALE_KEY = "tokenslo_time_scale"  # empty/0: read it from the rules Prometheus runs
SLO_PATHS_KEY = "tokenslo_slo_paths"  # comma-separated; default: the target's slo_paths
CONFIG_KEYS = (TARGET_FILE_KEY, TIME_SCALE_KEY, SLO_PATHS_KEY)
HTTP_TIMEOUT = 5.0


@dataclass
class Targets:
    """The target of this experiment run, with the run's overrides applied."""

    target: Target
    time_scale: float | None  # None: derive from Prometheus
    slo_paths: tuple[str, ...]
    _endpoints: discovery.Endpoints | None = field(default=None, repr=False)

    @property
    def state_dir(self) -> Path:
        return self.target.state_dir

    def url(self, name: str) -> str:
        """``prometheus``, ``webhook``, ``alertmanager`` or ``api``; bad input naming the
        target file's setting when it is missing."""
        attribute = f"{name}_url"
        return self.target.require(attribute, f"this experiment ({name})")

    def has(self, name: str) -> bool:
        return bool(getattr(self.target, f"{name}_url", None))

    def endpoints(self) -> discovery.Endpoints:
        """The IdP's endpoints as clients discover them (through the proxy, if any)."""
        if self._endpoints is None:
            self._endpoints = discovery.discover(self.target, timeout=HTTP_TIMEOUT)
        return self._endpoints

    def admin_url(self, component: str) -> str:
        if component.startswith(("http://", "https://")):
            return component.rstrip("/")
        return self.target.fault_admin(component).admin_url

    def admin_secret(self) -> str:
        return _read_secret(self.target.admin_secret_file, self.target.source)

    def credentials(self, role: str) -> Credentials:
        return credentials(self.target.client(role))


def _read_secret(path: Path | None, source: str) -> str:
    if path is None:
        raise InputError("no admin secret file", file=source, field="faults.admin_secret_file")
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"cannot read admin secret file: {exc.strerror}", file=str(path)) from None
    if not secret:
        raise InputError("admin secret file is empty", file=str(path))
    return secret


def _text(configuration: Mapping[str, Any] | None, key: str) -> str:
    value = (configuration or {}).get(key)
    return "" if value is None else str(value).strip()


_TARGET_CACHE: dict[str, Targets] = {}


def resolve(configuration: Mapping[str, Any] | None) -> Targets:
    """The experiment's target, read once per process (Chaos Toolkit runs every activity of
    one run in one process) so discovery happens once."""
    file = _text(configuration, TARGET_FILE_KEY)
    key = "\0".join(_text(configuration, k) for k in CONFIG_KEYS)
    if key not in _TARGET_CACHE:
        target = load_target(file or None)
        _TARGET_CACHE[key] = Targets(
            target=target,
            time_scale=_time_scale(configuration),
            slo_paths=_slo_paths(configuration) or target.slo_paths,
        )
    return _TARGET_CACHE[key]


def _time_scale(configuration: Mapping[str, Any] | None) -> float | None:
    text = _text(configuration, TIME_SCALE_KEY)
    if not text or text == "0":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 1:
        raise InputError(f"must be a number >= 1, got {text!r}", field=TIME_SCALE_KEY)
    return value


def _slo_paths(configuration: Mapping[str, Any] | None) -> tuple[str, ...]:
    text = _text(configuration, SLO_PATHS_KEY)
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else ()


# -- SLOs -------------------------------------------------------------------------------------

_SLO_CACHE: dict[tuple[str, ...], list[SLO]] = {}


def find_slo(targets: Targets, name: str) -> SLO:
    """The SLO called ``name`` in the configured SLO files (loaded once per process)."""
    from tokenslo.spec.loader import load_paths

    paths = targets.slo_paths
    if paths not in _SLO_CACHE:
        _SLO_CACHE[paths] = load_paths(list(paths))
    for slo in _SLO_CACHE[paths]:
        if slo.name == name:
            return slo
    known = ", ".join(s.name for s in _SLO_CACHE[paths])
    raise InputError(f"no SLO named {name!r} in {', '.join(paths)} (known: {known})", field="slo")


# -- what Prometheus runs ---------------------------------------------------------------------


def get_json(url: str, timeout: float = HTTP_TIMEOUT, **params: Any) -> Any:
    """GET a JSON document; unreachable or non-JSON → UnavailableError (exit 3)."""
    try:
        response = requests.get(url, params=params or None, timeout=timeout)
        response.raise_for_status()
        return response.json()
    except requests.RequestException as exc:
        raise UnavailableError(f"GET {url}: {type(exc).__name__}") from None
    except ValueError:
        raise UnavailableError(f"GET {url}: not JSON") from None


@dataclass(frozen=True)
class PromTiming:
    scrape_interval: float
    evaluation_interval: float


def prometheus_timing(prometheus_url: str) -> PromTiming:
    """Global scrape and evaluation intervals of the running Prometheus."""
    with PromClient(prometheus_url, timeout=HTTP_TIMEOUT) as prom:
        config = prom.config_yaml()
    try:
        glob = (yaml.safe_load(config) or {}).get("global", {})
    except (AttributeError, yaml.YAMLError):  # not YAML, or YAML but not a mapping
        raise UnavailableError(f"{prometheus_url}: unreadable /api/v1/status/config") from None
    return PromTiming(
        scrape_interval=parse_duration(str(glob.get("scrape_interval", "1m"))),
        evaluation_interval=parse_duration(str(glob.get("evaluation_interval", "1m"))),
    )


def burn_alert_rules(prometheus_url: str, slo_name: str) -> list[dict]:
    """The loaded ``SLOErrorBudgetBurn`` rules of one SLO (Prometheus rules API)."""
    with PromClient(prometheus_url, timeout=HTTP_TIMEOUT) as prom:
        groups = prom.rules(type="alert")
    return [
        rule
        for group in groups
        for rule in group.get("rules", [])
        if rule.get("name") == c.BURN_ALERT and rule.get("labels", {}).get(c.SLO_LABEL) == slo_name
    ]


def alert_rule_names(prometheus_url: str) -> set[str]:
    """The names of the alert rules Prometheus evaluates."""
    with PromClient(prometheus_url, timeout=HTTP_TIMEOUT) as prom:
        groups = prom.rules(type="alert")
    return {str(rule.get("name")) for group in groups for rule in group.get("rules", [])}


def active_alerts(prometheus_url: str, alertname: str) -> list[dict]:
    """The pending and firing alerts called ``alertname`` (Prometheus' alerts API)."""
    with PromClient(prometheus_url, timeout=HTTP_TIMEOUT) as prom:
        alerts = prom.alerts()
    return [a for a in alerts if a.get("labels", {}).get("alertname") == alertname]


def scale_from_rules(slo: SLO, rules: list[dict]) -> float | None:
    """Time scale = nominal ``for`` / loaded ``for``, from the first rule that has one (a
    ticket's by default: pages fire without a ``for``). Pure."""
    from tokenslo.core.durations import format_duration

    nominal = {format_duration(w.long_window): w.for_ for w in burnrate.policy_for(slo)}
    for rule in rules:
        wanted = nominal.get(rule.get("labels", {}).get(c.LONG_WINDOW_LABEL, ""))
        loaded = rule.get("duration")
        if wanted and isinstance(loaded, int | float) and loaded > 0:
            return scale_between(wanted, float(loaded))
    return None


_SCALE_CACHE: dict[tuple[str, str], float] = {}


def time_scale_for(targets: Targets, slo: SLO) -> float:
    """The configured time scale, or the one of the rules Prometheus evaluates for ``slo``."""
    if targets.time_scale is not None:
        return targets.time_scale
    prom = targets.url("prometheus")
    key = (prom, slo.name)
    if key not in _SCALE_CACHE:
        scale = scale_from_rules(slo, burn_alert_rules(prom, slo.name))
        if scale is None:
            raise UnavailableError(
                f"Prometheus at {prom} has no {c.BURN_ALERT} rule with a 'for' for SLO "
                f"{slo.name!r} to read the time scale from; load the generated rules or set "
                f"{TIME_SCALE_KEY!r}"
            )
        _SCALE_CACHE[key] = scale
    return _SCALE_CACHE[key]


def answers(url: str) -> bool:
    """Whether anything HTTP answers at ``url`` (an API without a token answers 401: fine)."""
    try:
        requests.get(url, timeout=HTTP_TIMEOUT)
    except requests.RequestException:
        return False
    return True


def wait_healthy(url: str, timeout: float = 5.0) -> bool:
    """True once ``url`` answers 200 (bounded by ``timeout``)."""
    try:
        return wait_until(lambda: _answers_200(url), timeout, 0.2, f"{url} to answer 200")
    except TimeoutError:
        return False


def _answers_200(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
