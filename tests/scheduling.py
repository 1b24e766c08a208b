"""How the suite spreads over pytest-xdist workers (``scripts/test`` runs ``-n``, ``--dist
loadgroup``).

Most of the slow tests wait on real time (a lab's windows, Prometheus' evaluation, a game
day), so running several at once on two cores saves wall time without faking anything.
Two rules keep that safe and balanced:

- A test that uses a fixture wider than one test (module, class or package scope: a lab,
  an IdP, a proxy) runs in its module's group, so the fixture starts once, not once per
  worker. A module may split itself into groups with explicit
  ``pytest.mark.xdist_group("<file>:<part>")`` marks: each part then gets its own copy of
  the module's fixtures, on whichever worker runs it.
- Groups start heaviest first (longest-processing-time order), estimated from the tiers a
  test has, so the long game days and promtool proofs do not start last and leave the
  other workers idle at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

SHARED_SCOPES = frozenset({"module", "class", "package"})
# Rough seconds per test by tier, only used to order groups: a real experiment or game
# day against a lab runs for minutes, a lab query for a second, a pure test for a blink.
COST = (("chaos", 60.0), ("realidp", 40.0), ("browser", 40.0), ("slow", 15.0),
        ("lab", 2.0), ("prometheus", 2.0))  # fmt: skip
PURE_COST = 0.05


def shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture that outlives it within its module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(d.scope in SHARED_SCOPES for chain in info.name2fixturedefs.values() for d in chain)


def group_of(item: pytest.Item) -> str | None:
    """The xdist group the test must run in, or None when any worker may take it alone."""
    explicit = item.get_closest_marker("xdist_group")
    if explicit is not None:
        return str(explicit.args[0] if explicit.args else explicit.kwargs.get("name"))
    return item.nodeid.split("::")[0] if shares_a_fixture(item) else None


def cost(item: pytest.Item) -> float:
    """Estimated seconds of the test, from its tier markers."""
    for tier, seconds in COST:
        if item.get_closest_marker(tier):
            return seconds
    return PURE_COST


def assign_groups(items: Iterable[pytest.Item]) -> None:
    """Mark every test that must share a worker with its module's tests."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and (name := group_of(item)):
            item.add_marker(pytest.mark.xdist_group(name))


def heaviest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """Items reordered so the costliest work unit (a group, or a test on its own) starts
    first; the order inside a group is kept, since a module's tests may build on each
    other."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(group_of(item) or item.nodeid, []).append(item)
    ordered = sorted(units.values(), key=lambda unit: -sum(map(cost, unit)))  # stable
    return [item for unit in ordered for item in unit]


class HeaviestFirst:
    """Plugin: the final test order, after pytest's own reordering for shared fixtures
    and after ``-m``/``-k`` deselected what they do."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items[:] = heaviest_first(items)
