"""The suite's own hooks (tests/conftest.py): tiers derived from what a test uses, and
skips that fail under CI. Run on small generated test files with pytester."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduling import durations_from_timeline

TESTS = Path(__file__).resolve().parent

USES_THINGS = """
import pytest
from tokenslo.prometheus.process import run_promtool


def check(path):
    return run_promtool("check", "rules", path)


def test_pure():
    assert 1 + 1 == 2


def test_promtool_through_a_helper(tmp_path):
    assert check(str(tmp_path / "none.yml")).returncode != 0


def test_prometheus_through_a_fixture(prometheus_factory):
    assert prometheus_factory is not None


def test_skips():
    pytest.skip("something is not installed")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(TESTS)
    pytester.makeconftest((TESTS / "conftest.py").read_text())
    pytester.makepyfile(test_things=USES_THINGS)
    return pytester


def test_markers_follow_from_helpers_and_fixtures(suite: pytest.Pytester):
    result = suite.runpytest("-m", "prometheus", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["*test_promtool_through_a_helper", "*test_prometheus_through_a_fixture"]
    )
    assert "test_pure" not in result.stdout.str()


def test_quick_runs_only_what_needs_no_tier(suite: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest("--quick", "-k", "not skips")
    result.assert_outcomes(passed=1, deselected=3)  # two tiered, one by -k


def test_a_skip_fails_under_ci_and_only_there(suite: pytest.Pytester, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    suite.runpytest("-k", "skips").assert_outcomes(skipped=1)
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest("-k", "skips")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*skipped under CI (something is not installed)*ALLOWED_SKIPS*"])


SHARES_A_LAB = """
import os
import pytest


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    with open(os.environ["STARTS"], "a") as starts:
        starts.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\\n")
    return "shared"


@pytest.mark.parametrize("n", range(6))
def test_uses_the_lab(shared, n):
    assert shared == "shared"


@pytest.mark.parametrize("n", range(6))
def test_alone(n):
    assert n >= 0


@pytest.mark.slow
def test_long():
    assert True
"""


def test_a_module_fixture_starts_once_across_workers(suite: pytest.Pytester, tmp_path, monkeypatch):
    """Under xdist the module's lab users share one worker, so the lab starts once."""
    suite.makepyfile(test_shared=SHARES_A_LAB)
    starts = tmp_path / "starts.txt"
    timeline = tmp_path / "timeline.json"
    monkeypatch.setenv("STARTS", str(starts))
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the conftest's own modules
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest_subprocess(
        "-p",
        "xdist",
        "-n",
        "3",
        "--dist",
        "loadgroup",
        "--no-loadscope-reorder",
        "--timeline",
        str(timeline),
        "test_shared.py",
        "-k",
        "not skips",
    )
    result.assert_outcomes(passed=13)
    assert len(starts.read_text().splitlines()) == 1
    ran = json.loads(timeline.read_text())  # written by the controller from every worker
    assert len(ran) == 13 and all("@" not in nodeid for nodeid in ran)
    lab_workers = {e["worker"] for n, e in ran.items() if "test_uses_the_lab" in n}
    assert len(lab_workers) == 1 and lab_workers < {"gw0", "gw1", "gw2"}
    assert all(e["stop"] >= e["start"] and e["seconds"] >= 0 for e in ran.values())


def test_costly_work_is_collected_first(suite: pytest.Pytester):
    """The slow test, then the lab's group (it is dearer than one pure test), then the rest."""
    suite.makepyfile(test_shared=SHARES_A_LAB)
    result = suite.runpytest("--collect-only", "-q", "test_shared.py")
    names = [line for line in result.stdout.lines if "::" in line]
    assert names[0].endswith("::test_long")
    assert [n.split("::")[1].split("[")[0] for n in names[1:7]] == ["test_uses_the_lab"] * 6


def test_measured_durations_outrank_the_tier_estimates(suite: pytest.Pytester, monkeypatch):
    """A pure test measured at 500 s goes before the lab's group and the slow test."""
    suite.makepyfile(test_shared=SHARES_A_LAB)
    suite.makeini("[pytest]\n")  # node ids relative to this directory, wherever it lies
    durations = suite.path / "durations.json"
    durations.write_text(json.dumps({"test_shared.py::test_alone[4]": 500.0}))
    monkeypatch.setenv("TOKENSLO_TEST_DURATIONS", str(durations))
    result = suite.runpytest("--collect-only", "-q", "test_shared.py")
    names = [line for line in result.stdout.lines if "::" in line]
    assert names[0].endswith("::test_alone[4]")
    assert names[1].endswith("::test_long")


def test_durations_keep_only_what_costs_a_second():
    timeline = {
        "a.py::slow": {"seconds": 12.34, "worker": "gw0", "start": 0.0, "stop": 12.4},
        "a.py::quick": {"seconds": 0.2, "worker": "gw1", "start": 0.0, "stop": 0.2},
    }
    assert durations_from_timeline(timeline) == {"a.py::slow": 12.3}
