"""The backtest run shared by the Prometheus and VictoriaMetrics engine tests."""

from __future__ import annotations

import json

import pytest

from tokenslo.cli import main


def flip_intervals(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, dict]:
    """Run ``slo backtest ... --format json`` over the SLOs ``flip`` and ``ghost`` (no
    series): exit 3 naming ghost alone, and flip's page and ticket interval by severity."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 3 and "no data in the range for SLO(s): ghost" in err
    result = json.loads(out)
    assert result["slos"]["ghost"] == []
    intervals = {i["severity"]: i for i in result["slos"]["flip"]}
    assert set(intervals) == {"page", "ticket"}
    return intervals
