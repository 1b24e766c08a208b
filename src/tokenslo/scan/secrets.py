"""The generic secret kinds (keyword secrets such as OAuth client secrets, cloud and
SaaS keys, private keys, JWTs), found by the maintained detector ``detect-secrets``.

Its plugins and false-positive filters are used as they are, with two choices of ours:
the entropy plugins, the public-IP plugin and the Artifactory plugin are left out (the
first flag every digest and commit hash in a CI log, the second is no secret, the third
matches about one random base64url identifier in 20,000 — ``AP`` and a hex digit after a
quote — and token infrastructure writes such ids, ``jti`` and ``kid``, everywhere), and
so is the filter
``is_likely_id_string``, which drops any value that follows an ``_id`` on the same
line — exactly the ``{"client_id": …, "client_secret": …}`` of OAuth client
credentials. Each file's own name picks the plugins' rules for its type, as in
``detect-secrets scan`` (YAML and config files accept unquoted values).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.settings import get_filters, get_plugins, transient_settings
from detect_secrets.util.code_snippet import get_code_snippet
from detect_secrets.util.inject import call_function_with_arguments

JWT_KIND = "JSON Web Token"  # detect-secrets' JwtTokenDetector.secret_type

LEFT_OUT_PLUGINS = frozenset(
    {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector", "ArtifactoryDetector"}
)
FILTERS = (
    "detect_secrets.filters.allowlist.is_line_allowlisted",  # `# pragma: allowlist secret`
    "detect_secrets.filters.heuristic.is_sequential_string",
    "detect_secrets.filters.heuristic.is_potential_uuid",
    "detect_secrets.filters.heuristic.is_templated_secret",
    "detect_secrets.filters.heuristic.is_prefixed_with_dollar_sign",
    "detect_secrets.filters.heuristic.is_indirect_reference",
    "detect_secrets.filters.heuristic.is_not_alphanumeric_string",
)


@dataclass(frozen=True)
class Hit:
    """One value a plugin found: its 1-based line, detect-secrets' kind and the value."""

    line: int
    kind: str
    value: str


Detector = Callable[[str, Sequence[str]], Iterator[Hit]]


@contextmanager
def detector() -> Iterator[Detector]:
    """``detect(name, lines)`` under our plugin and filter choice. detect-secrets keeps
    its settings in a process-wide singleton; ``transient_settings`` restores them on
    exit, so callers enter this once per scan rather than once per file."""
    classes: list[type] = [*get_mapping_from_secret_type_to_class().values()]
    plugins = [{"name": c.__name__} for c in classes if c.__name__ not in LEFT_OUT_PLUGINS]
    config = {"plugins_used": plugins, "filters_used": [{"path": path} for path in FILTERS]}
    with transient_settings(config):
        active = get_plugins()
        # Filters on the file name alone (is the file on disk, is it binary by its
        # extension) are the reader's job: this module sees text, not files.
        checks = [f for f in get_filters() if f.injectable_variables - {"filename"}]

        def detect(name: str, text_lines: Sequence[str]) -> Iterator[Hit]:
            lines = list(text_lines)
            for number, line in enumerate(lines, start=1):
                for plugin in active:
                    for secret in plugin.analyze_line(filename=name, line=line, line_number=number):
                        value = secret.secret_value
                        if value and not _filtered(checks, name, lines, number, plugin, value):
                            yield Hit(number, secret.type, value)

        yield detect


def _filtered(
    checks: list[Any], name: str, lines: list[str], number: int, plugin: Any, value: str
) -> bool:
    """Whether one of detect-secrets' filters calls the value a false positive; each
    filter takes the subset of these facts it names."""
    facts = {
        "filename": name,
        "line": lines[number - 1],
        "secret": value,
        "plugin": plugin,
        "context": get_code_snippet(lines, number),
    }
    return any(call_function_with_arguments(check, **facts) for check in checks)
