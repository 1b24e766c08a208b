"""Reports without Prometheus: series math, alert spans, HTML/Markdown rendering, CLI input."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tokenslo.cli import main
from tokenslo.core.model import SLO, EventsSLI
from tokenslo.core.timescale import scale_slo
from tokenslo.engine.evaluator import SLOStatus, WindowCounts, alert_windows
from tokenslo.errors import InputError
from tokenslo.reports import data as rd
from tokenslo.reports.cli import parse_timeline
from tokenslo.reports.model import (
    AlertSpan,
    Experiment,
    FaultInterval,
    ReportModel,
)
from tokenslo.reports.render import (
    format_of,
    redact,
    render_html,
    render_markdown,
    write_report,
)

T0 = 1_700_000_000.0
HOUR = 3600.0
DAY = 86400.0


def _slo(name: str = "api-availability", objective: float = 99.9) -> SLO:
    sli = EventsSLI(
        total="sum(rate(x_total[{{window}}]))", bad='sum(rate(x_total{code="5"}[{{window}}]))'
    )
    return SLO(name=name, service="api", objective=objective, window=30 * DAY, sli=sli)


def _counts(slo: SLO, times, ratio_at) -> dict[float, dict[int, WindowCounts]]:
    """Every window of ``slo``: 1000 events per step, ``ratio_at(t)`` of them errors."""
    return {
        w: {round(t * 1000): WindowCounts(errors=1000 * ratio_at(t), total=1000.0) for t in times}
        for w in alert_windows(slo)
    }


# ---------------------------------------------------------------- data (pure)


def test_series_are_sli_and_burn_of_the_fetched_counts():
    slo = _slo(objective=99.9)
    times = [T0 + 10 * i for i in range(30)]
    counts = _counts(slo, times, lambda t: 0.02 if t >= T0 + 100 else 0.0)
    counts[300.0][round(times[5] * 1000)] = WindowCounts(errors=0.0, total=0.0)  # no traffic

    series = rd.slo_series(slo, counts, times, sli_window=300.0)

    assert series.sli_window == "5m"
    sli = dict(series.sli.points)
    assert sli[times[0]] == pytest.approx(1.0)
    assert sli[times[20]] == pytest.approx(0.98)
    assert sli[times[5]] is None  # 0/0 is not 100%
    assert [s.label for s in series.burn] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    burn_1h = dict(series.burn[2].points)
    assert burn_1h[times[20]] == pytest.approx(20.0)  # 2% errors / 0.1% budget
    assert series.sli.present == 29
    factors = [th.value for th in series.burn_thresholds]
    assert factors == pytest.approx([14.4, 6.0, 3.0, 1.0])
    assert [th.value for th in series.sli_thresholds] == pytest.approx(
        [1 - 14.4 * 0.001, 1 - 6 * 0.001, 1 - 3 * 0.001, 1 - 0.001]
    )


def test_time_scale_divides_windows_but_keeps_factors_and_names():
    slo = _slo()
    scaled = scale_slo(slo, 60)
    assert scaled.window == pytest.approx(12 * HOUR)
    assert sorted(alert_windows(scaled)) == pytest.approx(
        sorted(w / 60 for w in alert_windows(slo))
    )
    sli_lines, burn_lines = rd.thresholds_of(scaled, time_scale=60)
    assert [b.value for b in burn_lines] == pytest.approx([14.4, 6.0, 3.0, 1.0])
    assert burn_lines[0].label == "page 1h/5m ×14.4"  # nominal windows, not 1m/5s
    assert rd.sli_window_of(scaled) == pytest.approx(5)
    assert rd.sli_window_of(scaled, 30.0) == 30.0


def _alerts_series(slo: str, severity: str, times: list[float]) -> dict:
    return {
        "metric": {
            "alertname": "SLOErrorBudgetBurn",
            "slo": slo,
            "severity": severity,
            "long_window": "1h",
            "short_window": "5m",
        },
        "values": [[t, "1"] for t in times],
    }


def test_alerts_matrix_becomes_spans_split_at_gaps():
    step, end = 5.0, T0 + 200
    matrix = [
        _alerts_series("a", "page", [T0 + 10, T0 + 15, T0 + 20, T0 + 60, T0 + 65]),
        _alerts_series("a", "ticket", [T0 + 190, T0 + 195, T0 + 200]),
        _alerts_series("other", "page", [T0 + 10]),
    ]
    spans = rd.spans_from_alerts_matrix(matrix, step, end, ["a"])
    got = [(s.severity, s.start - T0, None if s.end is None else s.end - T0) for s in spans]
    assert got == [("page", 10, 25), ("page", 60, 70), ("ticket", 190, None)]
    assert {s.windows for s in spans} == {"1h/5m"}
    assert {s.source for s in spans} == {"prometheus"}


def test_source_never_shows_credentials_or_scheme():
    assert rd.source_of("https://user:pw@prom.example:9090/x") == "prom.example:9090"


# ---------------------------------------------------------------- rendering


def _status(name: str, state: str = "ok", sli: float | None = 0.9995) -> SLOStatus:
    return SLOStatus(
        name=name,
        service="api",
        objective=99.9,
        window=30 * DAY,
        at=T0 + 290,
        sli=sli,
        error_ratio=None if sli is None else 1 - sli,
        error_budget_remaining=None if sli is None else 0.5,
        burn_rates={"5m": 0.5, "1h": 0.25},
        time_to_exhaustion=None,
        exhaustion_window="1h",
        state=state,
        reason="no alert condition holds" if state == "ok" else "no data: x",
    )


def _model(title: str = "Game <day> & report") -> ReportModel:
    slo = _slo("api-availability")
    times = [T0 + 10 * i for i in range(30)]
    counts = _counts(slo, times, lambda t: 0.05 if T0 + 100 <= t < T0 + 200 else 0.001)
    return ReportModel(
        title=title,
        start=T0,
        end=T0 + 290,
        step=10.0,
        generated_at=T0 + 300,
        statuses=[_status("api-availability"), _status("quiet", "no_data", None)],
        series={"api-availability": rd.slo_series(slo, counts, times, 300.0)},
        alerts=[
            AlertSpan("api-availability", "page", "1h/5m", T0 + 120, T0 + 210, "backtest"),
            AlertSpan("api-availability", "page", "1h/5m", T0 + 125, None, "prometheus"),
        ],
        faults=[FaultInterval(T0 + 100, T0 + 200, "IdP 503 | half")],
        experiments=[
            Experiment(
                "idp-outage",
                "passed",
                ("page 1h/5m",),
                ("page 1h/5m",),
                20.0,
                18.5,
                0.021,
                90.0,
                "detected",
            )
        ],
        source="127.0.0.1:9090",
    )


def _external_refs(html: str) -> list[str]:
    urls = re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s\"'<>)]*", html)
    srcs = [
        s
        for s in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
        if not s.startswith(("#", "data:"))
    ]
    css = [
        u for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", html) if not u.startswith(("#", "data:"))
    ]
    return urls + srcs + css + re.findall(r"http://|https://|@import|<script|<link|<img", html)


def _points(svg_group: str) -> int:
    path = re.search(r'<path d="([^"]+)"', svg_group)
    return 0 if path is None else len(re.findall(r"[ML] ", path[1]))


def _group(html: str, gid_suffix: str) -> str:
    match = re.search(rf'<g id="[^"]*{re.escape(gid_suffix)}">(.*?)</g>', html, re.S)
    assert match, f"no element with id ending in {gid_suffix}"
    return match[1]


def test_html_is_self_contained_and_charts_plot_every_point():
    html = render_html(_model())

    assert _external_refs(html) == []
    assert "<svg" in html and "Game &lt;day&gt; &amp; report" in html  # title escaped
    assert _points(_group(html, "-api-availability-sli")) == 30
    assert _points(_group(html, "-api-availability-burn-1h")) == 30
    assert re.search(r'id="c0-api-availability-(sli|burn)-fault-0"', html)
    assert re.search(r'id="c0-api-availability-(sli|burn)-alert-page-\d"', html)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # charts' ids never collide in one document
    for table in ("SLO status", "Error budget", "Experiments", "Alerts", "Faults"):
        assert table in html
    assert "No series for this SLO." in html  # "quiet" has no series: said, not hidden


RENDER_ELSEWHERE = """
import hashlib, sys
sys.path[:0] = sys.argv[1:]
from test_reports_units import _model
from tokenslo.reports.render import render_html
print(hashlib.sha256(render_html(_model()).encode()).hexdigest())
"""


def test_same_model_renders_the_same_bytes():
    # Two calls in one process share every cache and one hash seed, so they would agree
    # on output that depends on either; fresh interpreters with different seeds do not.
    here = hashlib.sha256(render_html(_model()).encode()).hexdigest()
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", RENDER_ELSEWHERE, str(Path(__file__).parent)],
            env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        digests.add(done.stdout.strip())
    assert digests == {here}


def test_markdown_is_github_tables_without_html():
    md = render_markdown(_model())
    assert "# Game &lt;day&gt; &amp; report" in md  # HTML in a title is text, not markup
    assert "| api-availability | api | 99.9% | 30d | 99.950% | ok |" in md
    assert "IdP 503 \\| half" in md  # a pipe in a cell is escaped
    assert "| idp-outage | passed | page 1h/5m | page 1h/5m | 20.0s | 18.5s | 2.10% | 1m30s |" in md
    assert not re.search(r"</?[a-z]+[ >]", md)
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")
    rows = [line for line in md.splitlines() if line.startswith("| api-availability | page")]
    assert len(rows) == 2  # one backtest, one Prometheus alert


HOSTILE = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "![t](http://evil.example/t.png)",
    "[click](javascript:alert(3))",
    "`code` *bold* _em_ ~~del~~ | pipe \\ back",
)


def _hostile_model(evil: str) -> ReportModel:
    model = _model(title=f"t {evil}")
    model.statuses = [
        SLOStatus(**{**_status(f"s {evil}").__dict__, "state": f"st {evil}", "reason": evil})
    ]
    model.faults = [FaultInterval(T0, T0 + 5, f"f {evil}")]
    model.alerts = [AlertSpan(f"s {evil}", f"sev {evil}", f"w {evil}", T0, T0 + 5, evil)]
    model.experiments = [
        Experiment(f"e {evil}", f"st {evil}", (evil,), (evil,), 1.0, 1.0, 0.1, 1.0, f"n {evil}")
    ]
    model.notes = [f"note {evil}"]
    model.source = f"host {evil}"
    return model


def _live_markup(md: str) -> list[str]:
    """Markup characters not neutralised by a backslash (outside the template's own)."""
    return re.findall(r"(?<!\\)[*_~\[\]`|]", md.replace("\\\\", ""))


@pytest.mark.parametrize("evil", HOSTILE)
def test_markdown_escapes_every_untrusted_value(evil):
    """Issue 11 item 10: title, SLO name/state/reason, fault label, experiment name, status,
    alerts and notes, note lines and the source all come out as inert text."""
    md = render_markdown(_hostile_model(evil))
    assert "<" not in md.replace("&lt;", "")  # no raw HTML anywhere
    assert "](" not in md.replace("\\](", "")  # no link or image syntax survives
    # the only live markup is the template's own: the same as with a harmless value
    assert _live_markup(md) == _live_markup(render_markdown(_hostile_model("x")))


def test_free_text_is_scrubbed_of_tokens():
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJsb2FkdGVzdCJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
    model = _model(title=f"leak {token}")
    model.faults = [FaultInterval(T0, T0 + 5, f"bad token {token}")]
    for text in (render_html(model), render_markdown(model)):
        assert token not in text and "eyJ" not in text
    assert redact(f"x {token} y").startswith("x [token ")


def test_write_report_picks_the_format_by_suffix_atomically(tmp_path):
    html = write_report(_model(), tmp_path / "r.html")
    md = write_report(_model(), tmp_path / "r.md")
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert md.read_text().startswith("# ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.md"]  # no temp left
    with pytest.raises(InputError, match="use .html or .md"):
        format_of(tmp_path / "r.pdf")


def test_templates_can_be_overridden(tmp_path):
    (tmp_path / "report.md.j2").write_text("custom {{ title }}: {{ statuses | length }} SLOs\n")
    assert render_markdown(_model("T"), tmp_path) == "custom T: 2 SLOs\n"
    (tmp_path / "report.md.j2").write_text("{% if %}\n")
    with pytest.raises(InputError) as err:
        render_markdown(_model(), tmp_path)
    assert "report.md.j2" in str(err.value) and ":1" in str(err.value)


# ---------------------------------------------------------------- timeline and CLI input


def test_timeline_accepts_rfc3339_and_unix_times():
    faults, experiments, interrupted = parse_timeline(
        {
            "faults": [
                {"start": "2023-11-14T22:13:20Z", "end": T0 + 30, "label": "503", "slos": ["a"]},
                {"start": T0 + 40, "label": "hang"},
            ],
            "experiments": [{"name": "x", "status": "failed", "detection_time": 12}],
            "interrupted": True,
        },
        "t.json",
    )
    assert faults[0] == FaultInterval(T0, T0 + 30, "503", ("a",))
    assert faults[1].end is None
    assert experiments[0].detection_time == 12.0 and interrupted is True


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"faults": [{"label": "x"}]}, "faults[0].start"),
        ({"faults": [{"start": "yesterday", "label": "x"}]}, "faults[0].start"),
        ({"faults": [{"start": T0 + 5, "end": T0, "label": "x"}]}, "faults[0].end"),
        ({"faults": [{"start": T0, "label": "x", "slos": "a"}]}, "faults[0].slos"),
        ({"faults": {}}, "faults"),
        ({"fault": []}, "fault"),
        (
            {"experiments": [{"name": "x", "budget_consumed": "2%"}]},
            "experiments[0].budget_consumed",
        ),
    ],
)
def test_bad_timeline_names_the_field(data, field):
    with pytest.raises(InputError) as err:
        parse_timeline(data, "t.json")
    assert err.value.field == field and err.value.file == "t.json"


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_cli_bad_input_is_one_line_exit_2_before_any_query(tmp_path, capsys):
    bad = tmp_path / "t.json"
    bad.write_text('{"faults": [\n  {"start": 1,}\n]}')
    unreachable = "http://127.0.0.1:9"  # never queried: input is checked first
    repo_slo = str(Path(__file__).resolve().parents[2] / "slo")
    cases = [
        [repo_slo, "--prometheus", unreachable, "-o", str(tmp_path / "r.pdf")],
        [
            repo_slo,
            "--prometheus",
            unreachable,
            "-o",
            str(tmp_path / "r.md"),
            "--timeline",
            str(bad),
        ],
        [
            repo_slo,
            "--prometheus",
            unreachable,
            "-o",
            str(tmp_path / "r.md"),
            "--start",
            "2024-01-02T00:00:00Z",
            "--end",
            "2024-01-01T00:00:00Z",
        ],
        [repo_slo, "--prometheus", unreachable, "-o", str(tmp_path / "r.md"), "--step", "fast"],
    ]
    messages = []
    for args in cases:
        code, err = _run(["report", "slo", *args], capsys)
        assert code == 2, err
        assert err.count("\n") == 1 and "Traceback" not in err
        messages.append(err)
    assert "t.json:2:" in messages[1]  # file and line of the JSON error
    assert not list(tmp_path.glob("r.*"))


def test_cli_unreachable_prometheus_exits_3(tmp_path, capsys):
    repo_slo = str(Path(__file__).resolve().parents[2] / "slo")
    code, err = _run(
        [
            "report",
            "slo",
            repo_slo,
            "--prometheus",
            "http://127.0.0.1:9",
            "-o",
            str(tmp_path / "r.md"),
        ],
        capsys,
    )
    assert code == 3 and "unreachable" in err
    assert not (tmp_path / "r.md").exists()
