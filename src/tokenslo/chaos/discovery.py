"""``chaos discover tokenslo``: the catalogue of the extension's probes and actions.

Chaos Toolkit imports the distribution's top-level package (``tokenslo``) and
calls its ``discover``; that one stays a light wrapper so importing ``tokenslo``
never pulls in chaoslib.
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

from tokenslo import __version__

PROBES_MODULE = "tokenslo.chaos.probes"
ACTIONS_MODULE = "tokenslo.chaos.actions"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Probes and actions (with their typed arguments and docstrings); the system
    part lists the configuration keys the activities read."""
    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    from tokenslo.chaos import targets

    result = initialize_discovery_result("tokenslo", __version__, "tokenslo")
    result["activities"].extend(_optional_types_named(discover_probes(PROBES_MODULE)))
    result["activities"].extend(_optional_types_named(discover_actions(ACTIONS_MODULE)))
    if discover_system:
        result["system"] = {"configuration_keys": sorted(targets.CONFIG_KEYS)}
    return result


def _optional_types_named(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """chaoslib names every ``X | None`` argument "object"; name it after ``X`` instead,
    as the catalogue did when optional arguments were annotated ``X = None``."""
    from chaoslib.discovery.discover import portable_type_name

    for activity in activities:
        func = getattr(importlib.import_module(activity["mod"]), activity["name"])
        parameters = inspect.signature(func).parameters
        for arg in activity["arguments"]:
            inner = _optional_inner(parameters[arg["name"]].annotation)
            if inner is not None:
                arg["type"] = portable_type_name(inner)
    return activities


def _optional_inner(annotation: Any) -> Any:
    """``X`` of an ``X | None`` annotation, else None."""
    if not isinstance(annotation, types.UnionType):
        return None
    rest = [arg for arg in annotation.__args__ if arg is not type(None)]
    return rest[0] if len(rest) == 1 and len(annotation.__args__) == 2 else None
