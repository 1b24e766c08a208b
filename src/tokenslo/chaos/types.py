"""Named types for the Chaos Toolkit activities of the ``tokenslo`` extension.

Chaos Toolkit passes an experiment's ``configuration`` and ``secrets`` blocks to
every activity that declares a parameter of that name. chaoslib has aliases of the
same names, but it ships no type information (mypy sees them as ``Any``) and its
``Configuration`` claims string values only, while an experiment's configuration
holds numbers and booleans too. These aliases say what the activities really get.

Plain assignments, not ``type`` statements: ``chaos discover`` reads the annotations
at run time and knows a ``dict[...]`` as a mapping, but not a ``TypeAliasType``.
"""

from typing import Any

__all__ = ["Configuration", "Secrets"]

# The experiment's ``configuration`` block after Chaos Toolkit resolved env entries.
Configuration = dict[str, Any]
# The experiment's ``secrets`` block: one mapping of secret values per scope.
Secrets = dict[str, dict[str, Any]]
