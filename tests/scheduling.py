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
- Groups start heaviest first (longest-processing-time order), so the long game days and
  promtool proofs do not start last and leave the other workers idle at the end. A test's
  cost is its seconds in ``tests/durations.json`` (measured on a full run; refresh with
  ``scripts/refresh-durations``), else an estimate from its tiers (a new test).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

SHARED_SCOPES = frozenset({"module", "class", "package"})
# Rough seconds per test by tier, only used to order groups: a real experiment or game
# day against a lab runs for minutes, a lab query for a second, a pure test for a blink.
COST = (("chaos", 60.0), ("realidp", 40.0), ("browser", 40.0), ("slow", 15.0),
        ("lab", 2.0), ("prometheus", 2.0))  # fmt: skip
PURE_COST = 0.05
DURATIONS = Path(__file__).resolve().parent / "durations.json"


def load_durations(path: Path | None = None) -> dict[str, float]:
    """Measured seconds per test node id (``TOKENSLO_TEST_DURATIONS`` names another file
    than ``tests/durations.json``); empty when the file is missing."""
    path = path or Path(os.environ.get("TOKENSLO_TEST_DURATIONS") or DURATIONS)
    try:
        return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
    except FileNotFoundError:
        return {}


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


def base_id(nodeid: str) -> str:
    """The node id without the ``@group`` suffix xdist's loadgroup adds to it."""
    return nodeid.split("@", 1)[0]


def cost(item: pytest.Item, measured: Mapping[str, float] | None = None) -> float:
    """Seconds the test takes: measured when known, else estimated from its tier markers."""
    if measured and (seconds := measured.get(base_id(item.nodeid))) is not None:
        return seconds
    for tier, seconds in COST:
        if item.get_closest_marker(tier):
            return seconds
    return PURE_COST


def assign_groups(items: Iterable[pytest.Item]) -> None:
    """Mark every test that must share a worker with its module's tests."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and (name := group_of(item)):
            item.add_marker(pytest.mark.xdist_group(name))


def heaviest_first(
    items: list[pytest.Item], measured: Mapping[str, float] | None = None
) -> list[pytest.Item]:
    """Items reordered so the costliest work unit (a group, or a test on its own) starts
    first; the order inside a group is kept, since a module's tests may build on each
    other."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(group_of(item) or item.nodeid, []).append(item)

    def unit_cost(unit: list[pytest.Item]) -> float:
        return sum(cost(item, measured) for item in unit)

    ordered = sorted(units.values(), key=lambda unit: -unit_cost(unit))  # stable
    return [item for unit in ordered for item in unit]


class HeaviestFirst:
    """Plugin: the final test order, after pytest's own reordering for shared fixtures
    and after ``-m``/``-k`` deselected what they do."""

    def __init__(self, measured: Mapping[str, float] | None = None) -> None:
        self.measured = measured

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items[:] = heaviest_first(items, self.measured)


class Timeline:
    """Plugin: when and where each test ran (setup to teardown), written as JSON at the
    end, for ``tests/durations.json`` and for seeing how busy the workers were.
    Under xdist it runs in the controller, which receives every worker's reports."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)
        worker = getattr(getattr(node, "gateway", None), "id", "main")
        entry = self.tests.setdefault(
            base_id(report.nodeid), {"worker": worker, "start": report.start, "seconds": 0.0}
        )
        entry["seconds"] += report.duration
        entry["stop"] = report.stop

    def pytest_sessionfinish(self) -> None:
        if self.tests:
            self.path.write_text(json.dumps(self.tests, indent=1, sort_keys=True) + "\n")


def durations_from_timeline(
    timeline: Mapping[str, Mapping], floor: float = 1.0
) -> dict[str, float]:
    """``tests/durations.json`` from a timeline: the tests that took ``floor`` seconds or
    more (the rest cost a blink either way), rounded to a tenth."""
    return {
        nodeid: round(entry["seconds"], 1)
        for nodeid, entry in sorted(timeline.items())
        if entry["seconds"] >= floor
    }


def busy_summary(timeline: Mapping[str, Mapping]) -> str:
    """One line: the run's span and how much of it each worker spent in tests."""
    if not timeline:
        return "no tests ran"
    first = min(e["start"] for e in timeline.values())
    span = max(e["stop"] for e in timeline.values()) - first
    busy: dict[str, float] = {}
    for entry in timeline.values():
        busy[entry["worker"]] = busy.get(entry["worker"], 0.0) + entry["seconds"]
    workers = ", ".join(f"{w} {s:.0f} s" for w, s in sorted(busy.items()))
    return f"{span:.0f} s from first start to last stop; in tests: {workers}"
