"""Where the probes and actions point: URLs, secret *files*, SLOs and the time scale.

Everything comes from the experiment's ``configuration`` (usually env-backed, so an
experiment file never holds a URL or a secret of one environment), falling back to
the lab's ``state.json`` in ``tokenslo_lab_state_dir``. Secrets are only ever read
from files at the moment they are needed, never returned or logged.

The time scale of the loaded alert rules is read from Prometheus itself (the
``for`` of the fastest burn-rate alert against its nominal value), so the expected
detection times always match the rules Prometheus really evaluates.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from tokenslo.durations import parse_duration
from tokenslo.engine import burnrate
from tokenslo.errors import InputError, UnavailableError
from tokenslo.rules import conventions as c
from tokenslo.spec.model import SLO

# Configuration keys an experiment may set (all optional but the lab state dir).
STATE_DIR_KEY = "tokenslo_lab_state_dir"
PROMETHEUS_KEY = "tokenslo_prometheus_url"
URL_KEYS = {
    "idp": "tokenslo_idp_url",
    "gateway": "tokenslo_gateway_url",
    "webhook": "tokenslo_webhook_url",
    "prometheus": PROMETHEUS_KEY,
}
PROXY_ADMIN_KEY = "tokenslo_proxy_admin_url"  # a fault proxy (real environments): target "proxy"
ADMIN_SECRET_FILE_KEY = "tokenslo_admin_secret_file"
CREDENTIALS_FILE_KEY = "tokenslo_credentials_file"
TIME_SCALE_KEY = "tokenslo_time_scale"  # empty/0: read it from the rules Prometheus runs
SLO_PATHS_KEY = "tokenslo_slo_paths"  # comma-separated; default "slo/"
DEFAULT_STATE_DIR = ".tokenslo/lab"
HTTP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Targets:
    urls: dict[str, str]  # idp, gateway, webhook, prometheus (whatever is known)
    admin_urls: dict[str, str]  # target name → base URL of its /admin API
    admin_secret_file: Path | None
    credentials_file: Path | None
    state_dir: Path | None
    time_scale: float | None  # None: derive from Prometheus
    slo_paths: tuple[str, ...] = ("slo/",)
    notes: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        try:
            return self.urls[name]
        except KeyError:
            raise InputError(
                f"no URL for {name!r}: set configuration {URL_KEYS.get(name, name)!r} "
                f"or {STATE_DIR_KEY!r} (a running lab)",
                field=URL_KEYS.get(name, name),
            ) from None

    def admin_url(self, target: str) -> str:
        if target.startswith(("http://", "https://")):
            return target.rstrip("/")
        try:
            return self.admin_urls[target]
        except KeyError:
            known = ", ".join(sorted(self.admin_urls)) or "none"
            raise InputError(
                f"unknown fault target {target!r} (known: {known}; or an admin base URL)",
                field="target",
            ) from None

    def admin_secret(self) -> str:
        return _read_secret(self.admin_secret_file, ADMIN_SECRET_FILE_KEY)

    def credentials(self) -> dict[str, str]:
        from tokenslo.lab.orchestrator import read_credentials

        if self.credentials_file is None:
            raise InputError(
                f"no client credentials: set {CREDENTIALS_FILE_KEY!r} or {STATE_DIR_KEY!r}",
                field=CREDENTIALS_FILE_KEY,
            )
        creds = read_credentials(self.credentials_file)
        if not creds:
            raise InputError("no client credentials found", file=str(self.credentials_file))
        return creds


def _read_secret(path: Path | None, key: str) -> str:
    if path is None:
        raise InputError(f"no admin secret file: set {key!r} or {STATE_DIR_KEY!r}", field=key)
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


def resolve(configuration: Mapping[str, Any] | None) -> Targets:
    """Targets from the experiment configuration, completed from the lab's state."""
    urls: dict[str, str] = {}
    admin: dict[str, str] = {}
    secret_file = credentials_file = state_dir = None
    notes: list[str] = []
    state_text = _text(configuration, STATE_DIR_KEY)
    if state_text:
        state_dir = Path(state_text)
        lab = _lab_state(state_dir)
        if lab is not None:
            for name, component in lab.components.items():
                urls[name] = component.url
            admin = {n: urls[n] for n in ("idp", "gateway") if n in urls}
            secret_file, credentials_file = lab.admin_secret_file, lab.credentials_file
        else:
            notes.append(f"no running lab recorded in {state_dir}")
    for name, key in URL_KEYS.items():
        if text := _text(configuration, key):
            urls[name] = text.rstrip("/")
            if name in ("idp", "gateway"):
                admin[name] = urls[name]
    if text := _text(configuration, PROXY_ADMIN_KEY):
        admin["proxy"] = text.rstrip("/")
    if text := _text(configuration, ADMIN_SECRET_FILE_KEY):
        secret_file = Path(text)
    if text := _text(configuration, CREDENTIALS_FILE_KEY):
        credentials_file = Path(text)
    return Targets(
        urls=urls,
        admin_urls=admin,
        admin_secret_file=secret_file,
        credentials_file=credentials_file,
        state_dir=state_dir,
        time_scale=_time_scale(configuration),
        slo_paths=_slo_paths(configuration),
        notes=notes,
    )


def _lab_state(state_dir: Path):
    from tokenslo.lab.orchestrator import load_state

    return load_state(state_dir)


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
    paths = tuple(p.strip() for p in text.split(",") if p.strip()) if text else ()
    return paths or ("slo/",)


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
    body = get_json(prometheus_url + "/api/v1/status/config")
    try:
        glob = (yaml.safe_load(body["data"]["yaml"]) or {}).get("global", {})
    except (KeyError, TypeError, yaml.YAMLError):
        raise UnavailableError(f"{prometheus_url}: unreadable /api/v1/status/config") from None
    return PromTiming(
        scrape_interval=parse_duration(str(glob.get("scrape_interval", "1m"))),
        evaluation_interval=parse_duration(str(glob.get("evaluation_interval", "1m"))),
    )


def burn_alert_rules(prometheus_url: str, slo_name: str) -> list[dict]:
    """The loaded ``SLOErrorBudgetBurn`` rules of one SLO (Prometheus rules API)."""
    body = get_json(prometheus_url + "/api/v1/rules", type="alert")
    groups = body.get("data", {}).get("groups", []) if isinstance(body, dict) else []
    return [
        rule
        for group in groups
        for rule in group.get("rules", [])
        if rule.get("name") == c.BURN_ALERT and rule.get("labels", {}).get(c.SLO_LABEL) == slo_name
    ]


def scale_from_rules(slo: SLO, rules: list[dict]) -> float | None:
    """Time scale = nominal ``for`` / loaded ``for``, from the first rule that has one. Pure."""
    from tokenslo.durations import format_duration

    nominal = {format_duration(w.long_window): w.for_ for w in burnrate.policy_for(slo)}
    for rule in rules:
        wanted = nominal.get(rule.get("labels", {}).get(c.LONG_WINDOW_LABEL, ""))
        loaded = rule.get("duration")
        if wanted and isinstance(loaded, int | float) and loaded > 0:
            return round(wanted / float(loaded), 6)
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
                f"Prometheus at {prom} has no {c.BURN_ALERT} rules for SLO {slo.name!r}; "
                f"load the generated rules or set {TIME_SCALE_KEY!r}"
            )
        _SCALE_CACHE[key] = scale
    return _SCALE_CACHE[key]


def wait_healthy(url: str, timeout: float = 5.0) -> bool:
    """True once ``url`` answers 200 (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
