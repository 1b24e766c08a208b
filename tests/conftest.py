"""Shared fixtures. Anything that needs Prometheus starts the real binary."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scheduling import HeaviestFirst, Timeline, assign_groups, load_durations
from support import free_ports_lab_config, lab_up_on_free_ports
from tiers import TIERS, derived_tiers
from tokenslo.prometheus.process import ManagedProcess, start_alertmanager, start_prometheus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start real Prometheus servers for a test; every one is stopped by PID afterwards."""
    started: list[ManagedProcess] = []

    def start(config: dict, **kwargs) -> ManagedProcess:
        proc = start_prometheus(config, tmp_path / f"prometheus-{len(started)}", **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    started: list[ManagedProcess] = []

    def start(config: dict, **kwargs) -> ManagedProcess:
        proc = start_alertmanager(config, tmp_path / f"alertmanager-{len(started)}", **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def lab_config(tmp_path_factory: pytest.TempPathFactory):
    """The config of the module's ``lab``; test folders override it to add to the lab."""
    return free_ports_lab_config()


@pytest.fixture(scope="module")
def lab(lab_config, tmp_path_factory: pytest.TempPathFactory):
    """One real lab (IdP, gateway, Prometheus, Alertmanager, webhook) per test module,
    always brought down by PID, even when start-up fails half-way."""
    from tokenslo.lab.orchestrator import lab_down

    state_dir = tmp_path_factory.mktemp("lab") / "state"
    try:
        yield lab_up_on_free_ports(lab_config, state_dir)[0]
    finally:
        lab_down(state_dir)


def restore_stop_signals() -> None:
    """Undo an inherited "ignore" of the stop signals. A run started in the background
    by a shell without job control ignores SIGINT (``cmd &``), and under ``nohup``
    SIGHUP; every process a test starts would inherit that, so a Ctrl-C or hang-up
    sent to a runner under test would never arrive. The suite starts from the
    defaults an interactive user has."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        if signal.getsignal(sig) == signal.SIG_IGN:
            default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, default)


def pytest_configure(config: pytest.Config) -> None:
    restore_stop_signals()
    config.pluginmanager.register(HeaviestFirst(load_durations()), "tokenslo-heaviest-first")
    timeline = config.getoption("timeline")
    if timeline and not hasattr(config, "workerinput"):  # the controller, or a serial run
        config.pluginmanager.register(Timeline(Path(timeline)), "tokenslo-timeline")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--quick",
        action="store_true",
        help=f"run only the tests that need none of: {', '.join(TIERS)} (scripts/test --quick)",
    )
    parser.addoption(
        "--timeline",
        metavar="FILE",
        help="write when, where and how long each test ran, as JSON (scripts/refresh-durations)",
    )


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Add the tier markers a test's code and fixtures imply (see ``tiers.py``); with
    ``--quick`` keep only the tests that have none. Then group and order the tests for
    the xdist workers (see ``scheduling.py``)."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        defs = item._fixtureinfo.name2fixturedefs.values()
        fixtures = [d.func for chain in defs for d in chain]
        have = {m.name for m in item.iter_markers()}
        for tier in sorted(derived_tiers(item.function, fixtures) - have):
            item.add_marker(tier)
    if config.getoption("quick"):
        quick = [i for i in items if not any(i.get_closest_marker(t) for t in TIERS)]
        if len(quick) < len(items):
            kept = set(map(id, quick))
            config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
            items[:] = quick
    assign_groups(items)


# Under CI (``.ci/run`` sets CI=true) a skip is a failure: the bootstrap installs everything
# the tests need, so a skip there hides a broken set-up. Only these may skip, each with
# why it cannot run on the CI machine (test node id prefix → reason).
ALLOWED_SKIPS: dict[str, str] = {}


def allowed_skip(nodeid: str) -> str | None:
    """The allow-list's reason for ``nodeid`` skipping, or None."""
    return next((why for prefix, why in ALLOWED_SKIPS.items() if nodeid.startswith(prefix)), None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if (
        os.environ.get("CI", "").lower() in ("1", "true", "yes")
        and report.skipped
        and not hasattr(report, "wasxfail")
        and allowed_skip(item.nodeid) is None
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (
            f"skipped under CI ({reason}); CI installs what tests need, so this is a failure. "
            "Install the missing piece in scripts/bootstrap, or add the test to ALLOWED_SKIPS "
            "in tests/conftest.py with its reason."
        )
    return report
