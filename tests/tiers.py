"""Test tiers derived from what a test uses, so no test needs hand markers to be excluded.

A test's markers are the union of its own and those implied by the code it reaches:
its body, the module-level functions of its module that it calls (transitively),
and every fixture it requests (pytest's closure), scanned the same way. Leaves are
the few helpers that start something real (``LEAVES``) and CLI argument lists that
do (``COMMANDS``). ``scripts/test --quick`` deselects every tier marker.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from collections.abc import Iterable
from functools import cache
from types import ModuleType

TIERS = ("lab", "prometheus", "chaos", "browser", "realidp", "slow")

_LAB = frozenset({"lab", "prometheus", "slow"})
LEAVES: dict[str, frozenset[str]] = {
    # the whole lab: five processes, Prometheus and Alertmanager among them
    "lab_up": _LAB,
    "lab_up_on_free_ports": _LAB,
    # the real Prometheus, Alertmanager or promtool
    "start_prometheus": frozenset({"prometheus"}),
    "start_alertmanager": frozenset({"prometheus"}),
    "run_promtool": frozenset({"prometheus"}),
    "check_rules": frozenset({"prometheus"}),
    # the real VictoriaMetrics and vmalert (the second PromQL backend)
    "start_victoria_metrics": frozenset({"prometheus"}),
    "start_vmalert": frozenset({"prometheus"}),
    # headless Chromium
    "CHROMIUM": frozenset({"browser", "slow"}),
}
# an argument list naming a command (string constants, or the name of the constant
# holding its executable) together with a subcommand → tiers. ``chaos validate`` and
# ``discover`` are quick; ``chaos run`` (ours or Chaos Toolkit's) runs an experiment.
COMMANDS: dict[tuple[str, str], frozenset[str]] = {
    ("lab", "up"): frozenset({"lab", "prometheus"}),
    ("chaos", "run"): frozenset({"chaos"}),
    ("CHAOS", "run"): frozenset({"chaos"}),
}


def _references(node: ast.AST) -> tuple[set[str], set[frozenset[str]]]:
    """Names (plain and attribute) a node uses, and the tiers of CLI lists in it."""
    names: set[str] = set()
    tiers: set[frozenset[str]] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.List | ast.Tuple):
            words = [_word(e) for e in sub.elts]
            tiers.update(t for pair, t in COMMANDS.items() if _has_command(words, pair))
    return names, tiers


def _word(node: ast.AST) -> str | None:
    """A string constant, or the name inside ``str(NAME)``/``NAME``; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name):
        return node.args[0].id
    return node.id if isinstance(node, ast.Name) else None


def _has_command(words: list[str | None], pair: tuple[str, str]) -> bool:
    """``command`` directly followed by ``sub``, or (an executable) anywhere before it."""
    command, sub = pair
    if command.isupper():
        return command in words and sub in words[words.index(command) :]
    return any((a, b) == pair for a, b in zip(words, words[1:], strict=False))


@cache
def _module_functions(module: ModuleType) -> dict[str, ast.AST]:
    """Module-level functions and classes of ``module`` by name (parsed once)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {n.name: n for n in tree.body if isinstance(n, kinds)}


@cache
def tiers_of_function(func) -> frozenset[str]:
    """Tiers a function reaches through its own module's helpers and the leaves."""
    func = inspect.unwrap(func)
    module = sys.modules.get(getattr(func, "__module__", ""), None)
    try:
        root = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return frozenset()
    helpers = _module_functions(module) if module else {}
    found: set[str] = set()
    seen: set[str] = set()
    todo: list[ast.AST] = [root]
    while todo:
        names, tiers = _references(todo.pop())
        for t in tiers:
            found |= t
        for name in names:
            found |= LEAVES.get(name, frozenset())
            if name in helpers and name not in seen:
                seen.add(name)
                todo.append(helpers[name])
    return frozenset(found)


def derived_tiers(test_func, fixture_funcs: Iterable) -> frozenset[str]:
    """Tiers of a test: its own code's and those of every fixture it requests."""
    found = set(tiers_of_function(test_func))
    for func in fixture_funcs:
        found |= tiers_of_function(func)
    return frozenset(found)
