"""Alert-policy files: a named ``alerting`` block to score against SLOs.

A policy file holds a name, an optional description, the rule group's evaluation
``interval`` (default 30s, as the generated rules use) and an ``alerting`` block in
exactly the SLO spec's schema (``burn_rate``, ``policy`` windows with ``for``,
``page``/``ticket``). Applying a policy to an SLO gives the SLO with its alert policy
replaced, so everything downstream (thresholds, windows, ``for``) is the same code
the rules and the backtest use. Errors name file, line and field (exit 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from tokenslo.core.durations import format_duration, parse_duration
from tokenslo.core.model import SLO, Alerting
from tokenslo.errors import InputError
from tokenslo.spec import schema as s
from tokenslo.spec.loader import build_alerting
from tokenslo.spec.validation import raise_first_error
from tokenslo.spec.yamlpos import Document, read_document

DEFAULT_INTERVAL = 30.0


@dataclass(frozen=True)
class Policy:
    name: str
    alerting: Alerting
    interval: float = DEFAULT_INTERVAL  # rule-group evaluation interval, seconds
    description: str = ""
    file: str = ""


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **s.strict_object(
                {
                    "name": {"type": "string", "pattern": s.NAME_PATTERN},
                    "description": {"type": "string"},
                    "interval": {"type": "string", "pattern": s.DURATION_PATTERN},
                    "alerting": s.alerting_schema(),
                },
                ("name", "alerting"),
            ),
        }
    )


def load_policy(path: str | Path) -> Policy:
    """Read and validate one policy file."""
    doc = read_document(path)
    if not isinstance(doc.data, dict):
        raise InputError("expected a mapping with name and alerting", file=doc.file, line=1)
    raise_first_error(doc, _validator())
    data = doc.data
    interval = parse_duration(data.get("interval", format_duration(DEFAULT_INTERVAL)))
    if not math.isfinite(interval) or interval < 1 or interval != round(interval):
        raise doc.error("interval must be a whole number of seconds, at least 1s", ("interval",))
    alerting = build_alerting(data["alerting"])
    _check_windows(doc, alerting)
    return Policy(
        name=data["name"],
        alerting=alerting,
        interval=interval,
        description=data.get("description", ""),
        file=doc.file,
    )


def load_policies(paths: list[str]) -> list[Policy]:
    """Every policy file in order; two policies may not share a name (they key the report)."""
    policies = [load_policy(p) for p in paths]
    seen: dict[str, str] = {}
    for policy in policies:
        if policy.name in seen:
            raise InputError(
                f"policy name {policy.name!r} is also used by {seen[policy.name]}",
                file=policy.file,
                field="name",
            )
        seen[policy.name] = policy.file
    return policies


def _check_windows(doc: Document, alerting: Alerting) -> None:
    for i, window in enumerate(alerting.policy or ()):
        path = ("alerting", "policy", i)
        if window.short_window <= 0 or window.short_window >= window.long_window:
            raise doc.error("short_window must be above 0s and shorter than long_window", path)


def apply(policy: Policy, slo: SLO) -> SLO:
    """``slo`` alerting under ``policy``: its windows, burn-rate mode and severities
    replace the SLO's own; its labels and annotations stay (they do not change timing)."""
    for i, window in enumerate(policy.alerting.policy or ()):
        if window.long_window > slo.window:
            raise InputError(
                f"long_window {format_duration(window.long_window)} is longer than SLO "
                f"{slo.name!r}'s window {format_duration(slo.window)}",
                file=policy.file,
                field=f"alerting.policy[{i}].long_window",
            )
    alerting = replace(
        slo.alerting,
        page=policy.alerting.page,
        ticket=policy.alerting.ticket,
        policy=policy.alerting.policy,
        burn_rate=policy.alerting.burn_rate,
    )
    return replace(slo, alerting=alerting)
