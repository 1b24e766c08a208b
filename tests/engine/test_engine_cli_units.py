"""CLI pieces that need no Prometheus: time/step parsing, rendering, bad input → exit 2."""

from __future__ import annotations

import pytest
from engine_slos import events_slo

from tokenslo.cli import main
from tokenslo.core.model import SLO, Alerting, EventsSLI, Source, Timeslices
from tokenslo.engine import backtest as bt
from tokenslo.engine import cli as ecli
from tokenslo.engine import evaluator as ev
from tokenslo.errors import InputError
from tokenslo.prometheus.client import PromClient


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000.0),
        ("1700000000.25", 1_700_000_000.25),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
        ("2023-11-14T22:13:20.5Z", 1_700_000_000.5),
        ("now", 42.0),
        ("NOW", 42.0),
    ],
)
def test_parse_time(text, expected):
    assert ecli.parse_time(text, now=42.0) == expected


@pytest.mark.parametrize("text", ["yesterday", "2023-11-14T22:13:20", "-5", "nan", "inf", ""])
def test_parse_time_rejects(text):
    with pytest.raises(InputError) as info:
        ecli.parse_time(text, field="--start")
    assert info.value.field == "--start" and info.value.exit_code == 2


def test_parse_step():
    assert ecli.parse_step("15s") == 15 and ecli.parse_step("1m30s") == 90
    assert ecli.parse_step("2.5") == 2.5
    for bad in ("0", "-1", "fast", "0s"):
        with pytest.raises(InputError):
            ecli.parse_step(bad)


def test_default_step_keeps_about_a_thousand_points():
    assert ecli.default_step(0, 100) == 1
    assert ecli.default_step(0, 86400) == 87


def _statuses():
    slo = events_slo("login-availability")
    counts = {w: ev.WindowCounts(errors=5.0, total=10_000.0) for w in ev.status_windows(slo)}
    return [
        ev.status_from_counts(slo, counts, 0.0),
        ev.status_from_counts(events_slo("jwks"), {}, 0.0),
    ]


def test_table_columns_are_aligned():
    header, rows = ecli.status_rows(_statuses())
    assert header[:4] == ["name", "objective", "sli", "budget left"]
    assert header[4:-1] == [f"burn {w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d")]
    assert rows[0][1:4] == ["99.9%", "99.950%", "50.0%"] and rows[0][4] == "0.50"
    assert rows[1][-1] == "no_data" and rows[1][2] == "-"
    lines = ecli.render_table(header, rows).splitlines()
    state_col = lines[0].index("state")
    assert lines[1][state_col:] == "ok" and lines[2][state_col:] == "no_data"


def test_markdown_is_a_github_table():
    header, rows = ecli.status_rows(_statuses())
    lines = ecli.render_markdown(header, rows).splitlines()
    assert lines[0].startswith("| name | objective |") and lines[1].startswith("| --- |")
    assert all(line.count("|") == len(header) + 1 for line in lines)


def test_bad_time_exits_2_without_traceback(tmp_path, capsys):
    code = main(
        ["slo", "status", str(tmp_path), "--prometheus", "http://127.0.0.1:1", "--at", "soon"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tokenslo: --at: not a time: 'soon'") and "Traceback" not in err


def test_backtest_end_before_start_exits_2(tmp_path, capsys):
    argv = ["slo", "backtest", str(tmp_path), "--prometheus", "http://127.0.0.1:1"]
    code = main([*argv, "--start", "2000", "--end", "1000"])
    assert code == 2 and "--end must be after --start" in capsys.readouterr().err


def test_backtest_refuses_traffic_aware_timeslices_before_any_request():
    # The spec checks reject the pair in files; an SLO built in code is refused too,
    # before the unreachable Prometheus is asked anything (else: a connection error).
    slo = SLO(
        name="sliced",
        service="idp",
        objective=99.0,
        window=3600.0,
        sli=EventsSLI(total="sum(increase(x_total[{{window}}]))", bad="vector(0)"),
        alerting=Alerting(burn_rate="traffic-aware"),
        timeslices=Timeslices(window=60.0, target=95.0),
        source=Source("sliced.yaml", 4),
    )
    with PromClient("http://127.0.0.1:1") as client, pytest.raises(InputError) as caught:
        bt.backtest([slo], client, 1000.0, 2000.0, 30.0)
    text = str(caught.value)
    assert "'sliced' uses timeslices budgeting with traffic-aware" in text, text
    assert caught.value.field == "alerting.burn_rate" and caught.value.line == 4
