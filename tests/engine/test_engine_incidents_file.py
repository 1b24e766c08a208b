"""Incidents files (the ground truth of a real range): parsing, and bad input exiting 2
with file, line and field, on its own and through ``slo backtest --incidents``; and a
real range's fetched counts as the scorer's timeline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_engine_policy_scoring import SLO_FILE, _slo, _write

from tokenslo.cli import main
from tokenslo.core.model import Alerting
from tokenslo.engine import observed
from tokenslo.engine.scoring import RealRange
from tokenslo.errors import InputError
from tokenslo.spec.incidents import IncidentEntry, load_incidents
from tokenslo.spec.policy import Policy

# 2026-11-30T10:00:00Z is 1796032800 unix seconds (date -u -d ... +%s)
T0 = 1796032800.0
UNREACHABLE = "http://127.0.0.1:9"  # never queried: every check here comes first


def test_entries_with_defaults_times_in_both_spellings(tmp_path):
    path = _write(
        tmp_path / "i.yaml",
        "incidents:\n"
        "  - {slo: issuance, start: 2026-11-30T10:00:00Z, end: '2026-11-30T11:20:00+01:00',"
        " kind: outage}\n"
        "  - start: 1796032800\n"
        "    end: '1796033400.5'\n"
        "    should_alert: false\n"
        "    description: a deploy\n",
    )
    parsed = load_incidents(path)
    first, second = parsed.entries
    assert (first.start, first.end, first.kind, first.slo) == (T0, T0 + 1200, "outage", "issuance")
    assert first.should_alert and first.line == 2
    assert (second.start, second.end, second.kind, second.slo) == (T0, T0 + 600.5, "incident", None)
    assert not second.should_alert and second.line == 3 and second.description == "a deploy"
    assert parsed.for_slo("issuance") == [second, first]  # by start, then end
    assert parsed.for_slo("other") == [second]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("- 1\n", 1, None, "mapping"),
        ("incidents: {}\n", 1, "incidents", "list"),
        ("incidents:\n  - {start: 1, end: 2, severity: page}\n", 2, "incidents[0]", "severity"),
        ("incidents:\n  - {start: 1}\n", 2, "incidents[0]", "end"),
        ("incidents:\n  - start: tomorrow\n    end: 2\n", 2, "incidents[0].start", "not a time"),
        (
            "incidents:\n  - start: 1\n    end: 2026-11-30T10:00:00\n",
            3,
            "incidents[0].end",
            "offset",
        ),
        ("incidents:\n  - start: 1\n    end: 2026-11-30\n", 3, "incidents[0].end", "not a time"),
        ("incidents:\n  - {start: 10, end: 10}\n", 2, "incidents[0].end", "after start"),
        (
            "incidents:\n  - {start: 1, end: 2, should_alert: 3}\n",
            2,
            "incidents[0].should_alert",
            "",
        ),
        ("incidents:\n  - {start: 1, end: 2, slo: Bad Name}\n", 2, "incidents[0].slo", ""),
    ],
)
def test_file_errors_name_file_line_and_field(tmp_path, text, line, field, words):
    path = _write(tmp_path / "bad.yaml", text)
    with pytest.raises(InputError) as info:
        load_incidents(path)
    assert (info.value.file, info.value.line) == (path, line), str(info.value)
    if field:
        assert (info.value.field or "").startswith(field), str(info.value)
    assert words in str(info.value)


def test_range_and_slo_checks_name_the_entry(tmp_path):
    path = _write(
        tmp_path / "i.yaml",
        f"incidents:\n  - {{start: {T0:.0f}, end: {T0 + 60:.0f}}}\n"
        f"  - {{slo: ghost, start: {T0:.0f}, end: {T0 + 60:.0f}}}\n",
    )
    parsed = load_incidents(path)
    with pytest.raises(InputError) as unknown:
        parsed.check(["issuance"], T0, T0 + 60)
    assert (unknown.value.line, unknown.value.field) == (3, "incidents[1].slo")
    assert "ghost" in str(unknown.value) and "issuance" in str(unknown.value)
    with pytest.raises(InputError) as early:
        parsed.check(["issuance", "ghost"], T0 + 1, T0 + 60)
    assert (early.value.line, early.value.field) == (2, "incidents[0].start")
    with pytest.raises(InputError) as late:
        parsed.check(["issuance", "ghost"], T0, T0 + 59)
    assert (late.value.line, late.value.field) == (2, "incidents[0].end")
    parsed.check(["issuance", "ghost"], T0, T0 + 60)  # the bounds themselves are inside


def _backtest(tmp_path: Path, *args: str) -> list[str]:
    slo_file = _write(tmp_path / "slo.yaml", SLO_FILE)
    policy = _write(tmp_path / "p.yaml", "name: calm\nalerting: {}\n")
    argv = ["slo", "backtest", slo_file, "--prometheus", UNREACHABLE, "--policy", policy]
    return [*argv, *args, "-o", str(tmp_path / "report")]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "0", "--end", "3600"], "--incidents"),  # --policy alone
        (["--synthetic", "--incidents", "{inc}"], "drop --incidents"),
        (["--incidents", "{inc}"], "--start and --end"),
        (["--incidents", "{inc}", "--start", "{t0}", "--end", "{t1}", "--step", "7s"], "--step"),
        (["--incidents", "{inc}", "--start", "{t1}", "--end", "{t0}"], "--end must be after"),
        (["--incidents", "{inc}", "--start", "{t0}", "--end", "{early}"], "incidents[0].end"),
        (["--incidents", "{ghost}", "--start", "{t0}", "--end", "{t1}"], "unknown SLO 'ghost'"),
        (["--incidents", "{broken}", "--start", "{t0}", "--end", "{t1}"], "broken.yaml:2"),
        (["--incidents", "{inc}", "--start", "{t0}", "--end", "{t1}", "--seed", "3"], "--seed"),
    ],
)
def test_cli_refuses_bad_use_with_exit_2_before_any_query(tmp_path, capsys, extra, message):
    files = {
        "inc": _write(
            tmp_path / "inc.yaml", f"incidents:\n  - {{start: {T0:.0f}, end: {T0 + 600:.0f}}}\n"
        ),
        "ghost": _write(
            tmp_path / "ghost.yaml",
            f"incidents:\n  - {{slo: ghost, start: {T0:.0f}, end: {T0 + 600:.0f}}}\n",
        ),
        "broken": _write(tmp_path / "broken.yaml", "incidents:\n  - {start: 1}\n"),
        "t0": f"{T0:.0f}",
        "t1": f"{T0 + 3600:.0f}",
        "early": f"{T0 + 300:.0f}",
    }
    argv = _backtest(tmp_path, *(a.format(**files) for a in extra))
    if "--synthetic" in extra:
        argv.remove("--prometheus")
        argv.remove(UNREACHABLE)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "report").exists()


def test_incidents_without_a_policy_is_refused(tmp_path, capsys):
    slo_file = _write(tmp_path / "slo.yaml", SLO_FILE)
    incidents = _write(tmp_path / "inc.yaml", "incidents: []\n")
    argv = ["slo", "backtest", slo_file, "--incidents", incidents, "--start", "0", "--end", "60"]
    assert main([*argv, "--prometheus", UNREACHABLE]) == 2
    assert "--incidents needs at least one --policy" in capsys.readouterr().err


def test_counts_become_a_timeline_with_the_files_incidents():
    # 90% (budget 0.1) over 2 min: at a 30s step, 4 steps of history and 4 of range
    # (from 1000 to 1120); the second step has no data and counts as no requests.
    nan = float("nan")
    slo = replace(_slo(), window=120.0)
    total = [10, nan, 10, 10, 10, 10, 10, 10]
    errors = [0, nan, 0, 1, 5, 5, 0, 0]
    real = RealRange(1000.0, 1120.0, 30.0, "http://prom", "i.yaml")
    entry = IncidentEntry(start=1000.0, end=1060.0, kind="outage")
    timeline = observed.observed_timeline(
        slo, observed._present(errors), observed._present(total), real, 120.0, [entry]
    )
    assert timeline is not None
    assert (timeline.origin, timeline.end, timeline.resolution) == (-120.0, 120.0, 30.0)
    assert timeline.total[1] == 0.0 and timeline.errors[1] == 0.0
    assert timeline.budget_events == pytest.approx(0.1 * 40)  # the last period: 4 × 10
    [incident] = timeline.incidents
    assert (incident.kind, incident.start, incident.end) == ("outage", 0.0, 60.0)
    assert incident.error_ratio == pytest.approx(10 / 20)  # steps (1000, 1030], (1030, 1060]
    assert incident.budget_share == pytest.approx(10 / 4)
    assert observed.gap_share(total, 4) == 0.0 and observed.gap_share(total, 8) == 1 / 8
    idle = observed.observed_timeline(slo, [0.0] * 8, [1.0] * 4 + [0.0] * 4, real, 120.0, [])
    assert idle is None  # no event in its last period: no budget to take a share of


def test_step_divides_or_multiplies_every_policy_interval():
    fast = Policy(name="fast", alerting=Alerting(), interval=15.0)
    slow = Policy(name="slow", alerting=Alerting(), interval=60.0)
    for step in (5.0, 15.0, 30.0, 120.0):  # 30s: a multiple of 15s, a divisor of 60s
        observed.check_step(step, [fast, slow])
    for step in (7.0, 45.0, 90.0):  # 45s and 90s: multiples of 15s only
        with pytest.raises(InputError) as info:
            observed.check_step(step, [fast, slow])
        assert info.value.field == "--step"


def test_documented_example_names_starter_slos():
    from tokenslo.spec.loader import load_paths

    repo = Path(__file__).resolve().parents[2]
    example = load_incidents(repo / "docs" / "examples" / "incidents.yaml")
    assert [e.kind for e in example.entries] == ["outage", "partial", "blip"]
    assert [e.should_alert for e in example.entries] == [True, True, False]
    day = T0 - 10 * 3600  # 2026-11-30T00:00:00Z
    example.check((s.name for s in load_paths([str(repo / "slo")])), day, day + 86400)
