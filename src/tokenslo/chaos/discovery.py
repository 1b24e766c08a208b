"""``chaos discover tokenslo``: the catalogue of the extension's probes and actions.

Chaos Toolkit imports the distribution's top-level package (``tokenslo``) and
calls its ``discover``; that one stays a light wrapper so importing ``tokenslo``
never pulls in chaoslib.
"""

from __future__ import annotations

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
    result["activities"].extend(discover_probes(PROBES_MODULE))
    result["activities"].extend(discover_actions(ACTIONS_MODULE))
    if discover_system:
        result["system"] = {
            "configuration_keys": sorted(targets.CONFIG_KEYS)
        }
    return result
