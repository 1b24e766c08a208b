"""The configs ``lab up`` generates: IdP, gateway, Prometheus, Alertmanager and the rules.

The builders are pure functions of the lab config (and the state dir's file
names); the checks run before anything starts, so bad settings or rules are bad
input (exit 2) rather than a component that dies on start-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from tokenslo.core.durations import format_duration
from tokenslo.errors import InputError
from tokenslo.lab.config import LabConfig
from tokenslo.lab.credentials import CLIENTS, CLIENTS_FILE, CREDENTIALS_FILE, clients_registry
from tokenslo.lab.ports import HOST
from tokenslo.lab.state import write_lab_file
from tokenslo.prometheus.process import run_promtool

SCRAPE_JOBS = {
    "idp": "idp",
    "gateway": "gateway",
    "webhook": "tokenslo-webhook",
    "prober": "prober",
}
RULES_FILE = "tokenslo-slo-rules.yml"
# The lab's own alerts (not from SLOs), shipped in the package: written under this name.
SECURITY_RULES = Path(__file__).with_name("security_rules.yaml")
SECURITY_RULES_FILE = "tokenslo-lab-security-rules.yml"


def issuer_url(config: LabConfig) -> str:
    return f"http://{HOST}:{config.ports.idp}"


def idp_config(config: LabConfig, state_dir: Path) -> dict[str, Any]:
    return {
        **config.idp,
        "host": HOST,
        "port": config.ports.idp,
        "issuer": issuer_url(config),
        "keys_file": str(state_dir / "idp-keys.json"),
        "revocations_file": str(state_dir / "idp-revocations.json"),
        "clients_file": str(state_dir / CLIENTS_FILE),
    }


def gateway_config(config: LabConfig, state_dir: Path) -> dict[str, Any]:
    return {
        **config.gateway,
        "host": HOST,
        "port": config.ports.gateway,
        "issuer": issuer_url(config),
        "credentials_file": str(state_dir / CREDENTIALS_FILE),
        # its client_id label values, and the scopes each is registered for (a token
        # wider than that is counted: gateway_scope_beyond_registration_total)
        "clients": {client.client_id: {"scopes": list(client.scopes)} for client in CLIENTS},
    }


def gateway_audience(config: LabConfig) -> str:
    return str(config.gateway.get("audience", "api://lab"))


def prometheus_config(config: LabConfig) -> dict[str, Any]:
    """prometheus.yml: scrape the lab every ``scrape_interval``; alert via its Alertmanager."""
    interval = format_duration(config.scrape_interval)
    targets = {"idp": config.ports.idp, "gateway": config.ports.gateway}
    targets["webhook"] = config.ports.webhook
    if config.ports.prober is not None:
        targets["prober"] = config.ports.prober
    return {
        "global": {
            "scrape_interval": interval,
            # Must not exceed the interval; Prometheus refuses to start otherwise.
            "scrape_timeout": format_duration(min(config.scrape_interval, 10.0)),
            "evaluation_interval": format_duration(config.evaluation_interval),
        },
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{HOST}:{config.ports.alertmanager}"]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": SCRAPE_JOBS[name], "static_configs": [{"targets": [f"{HOST}:{port}"]}]}
            for name, port in targets.items()
        ],
    }


def alertmanager_config(
    config: LabConfig, webhook_secret_file: Path | None = None
) -> dict[str, Any]:
    """Route every alert, each in its own group, to the webhook receiver without delay.

    With ``webhook_secret_file`` Alertmanager authenticates to the webhook with it
    as a bearer credential (prometheus/common ``http_config.authorization``; the
    file is read by Alertmanager, the secret never enters its config).
    """
    webhook: dict[str, Any] = {
        "url": f"http://{HOST}:{config.ports.webhook}/alerts",
        "send_resolved": True,
    }
    if webhook_secret_file is not None:
        webhook["http_config"] = {
            "authorization": {"type": "Bearer", "credentials_file": str(webhook_secret_file)}
        }
    return {
        "route": {
            "receiver": "tokenslo-webhook",
            "group_by": ["..."],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "24h",
        },
        "receivers": [
            {
                "name": "tokenslo-webhook",
                "webhook_configs": [webhook],
            }
        ],
    }


def check_pass_through(config: LabConfig, state_dir: Path) -> None:
    """Validate the IdP/gateway settings now, so bad input fails before anything starts."""
    from tokenslo.lab.gateway.config import config_from_dict
    from tokenslo.lab.idp.config import YamlDoc, parse_idp_config

    parse_idp_config(YamlDoc(data=idp_config(config, state_dir), lines={}, file=config.source))
    config_from_dict(gateway_config(config, state_dir), config.source)


def rule_files(config: LabConfig, notes: list[str]) -> dict[str, str]:
    """SLO rules (rendered by the rule generator), the lab's security alerts, then
    ``extra_rule_files`` as they are."""
    files: dict[str, str] = {}
    rendered = render_slo_rules(config, notes)
    if rendered:
        files[RULES_FILE] = rendered
    files[SECURITY_RULES_FILE] = SECURITY_RULES.read_text(encoding="utf-8")
    for index, name in enumerate(config.extra_rule_files):
        try:
            files[f"extra-{index}-{Path(name).name}"] = Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot read rule file: {exc.strerror}", file=name, field="extra_rule_files"
            ) from None
    return files


def check_rules(rules: dict[str, str], config: LabConfig, workdir: Path) -> None:
    """``promtool check rules`` before anything starts: bad rules are bad input (exit 2)."""
    if not rules:
        return
    workdir.mkdir(parents=True, exist_ok=True)
    for name, text in rules.items():
        path = workdir / name
        path.write_text(text, encoding="utf-8")
        result = run_promtool("check", "rules", str(path), timeout=60)
        if result.returncode != 0:
            detail = _promtool_error(result.stdout + result.stderr)
            source = _rule_source(name, config)
            raise InputError(f"invalid Prometheus rules: {detail}", file=source, field="rules")


def _promtool_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith(("Checking", "FAILED", "SUCCESS"))]
    return (errors or lines or ["promtool failed"])[0]


def _rule_source(name: str, config: LabConfig) -> str:
    if name == RULES_FILE:
        return ", ".join(config.slo_paths)
    if name == SECURITY_RULES_FILE:
        return str(SECURITY_RULES)
    index = int(name.split("-", 2)[1])
    return config.extra_rule_files[index]


def render_slo_rules(config: LabConfig, notes: list[str]) -> str | None:
    paths = [p for p in config.slo_paths if Path(p).exists()]
    for missing in sorted(set(config.slo_paths) - set(paths)):
        notes.append(f"SLO path {missing} not found; no rules from it")
    if not paths:
        return None
    try:
        from tokenslo.rules import calendar
        from tokenslo.rules.generate import render_rules
        from tokenslo.spec.loader import load_paths
    except ImportError as exc:
        notes.append(f"rule generator unavailable ({exc}); Prometheus runs without SLO rules")
        return None
    slos = load_paths(paths)
    if not slos:
        notes.append(f"no SLOs in {', '.join(paths)}; Prometheus runs without SLO rules")
        return None
    now = time.time()
    rendered = render_rules(slos, fmt="prometheus", time_scale=config.rules_time_scale, now=now)
    for skip in calendar.skips(slos, config.rules_time_scale, now):
        notes.append(f"SLO {skip.slo.name}: {skip.message}")
    return rendered if isinstance(rendered, str) else yaml.safe_dump(rendered, sort_keys=False)


def write_configs(config: LabConfig, state_dir: Path, creds: dict[str, str]) -> None:
    registry = clients_registry(creds, gateway_audience(config))
    write_lab_file(state_dir / CLIENTS_FILE, yaml.safe_dump(registry, sort_keys=False), mode=0o600)
    for name, data in (
        ("idp", idp_config(config, state_dir)),
        ("gateway", gateway_config(config, state_dir)),
    ):
        write_lab_file(state_dir / f"{name}.yaml", yaml.safe_dump(data, sort_keys=False))
