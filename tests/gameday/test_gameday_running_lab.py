"""A lab already running with another rules time scale: the game day refuses (exit 2),
says which scale runs, writes no report and leaves that lab alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tokenslo.cli import main
from tokenslo.lab.orchestrator import lab_status

pytestmark = [pytest.mark.lab, pytest.mark.prometheus, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_running_lab_with_another_time_scale_is_bad_input(lab, tmp_path, capsys):
    assert lab.already_running is False  # the fixture's lab: rules time scale 1
    plan = tmp_path / "gameday.yaml"
    plan.write_text(
        yaml.safe_dump(
            {
                "time_scale": 60,
                "slo_paths": [str(REPO / "slo")],
                "experiments_dir": str(REPO / "experiments"),
                "load": {"driver": "none"},
                "experiments": [{"name": "idp-outage", "expect": "held"}],
            }
        )
    )
    out = tmp_path / "reports"
    argv = ["gameday", str(plan), "--state-dir", str(lab.state_dir), "--out", str(out)]
    code = main([*argv, "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert f"{plan}: time_scale:" in err[-1]
    assert "time scale 1 " in err[-1] and "needs 60" in err[-1]
    assert not out.exists() or not any(out.iterdir())
    assert [s.state for s in lab_status(lab.state_dir)] == ["healthy"] * 5  # left running
