"""``tokenslo rules generate``: output, atomic -o, and one-line errors with exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tokenslo.cli import main
from tokenslo.rules.generate import render_rules
from tokenslo.spec.loader import load_paths

SLO_FILE = """\
version: tokenslo/v1
service: idp
slos:
  - name: token-issuance-availability
    objective: 99.9
    window: 30d
    sli:
      events:
        bad: sum(increase(idp_token_requests_total{code=~"5.."}[{{window}}]))
        total: sum(increase(idp_token_requests_total[{{window}}]))
"""


@pytest.fixture
def slo_file(tmp_path: Path) -> Path:
    path = tmp_path / "idp.yaml"
    path.write_text(SLO_FILE)
    return path


def test_generate_to_stdout_matches_the_library(slo_file, capsys):
    assert main(["rules", "generate", str(slo_file)]) == 0
    out = capsys.readouterr().out
    assert out == render_rules(load_paths([slo_file]))
    assert yaml.safe_load(out)["groups"][0]["name"] == "tokenslo-slo-token-issuance-availability"


def test_output_file_is_written_atomically(slo_file, tmp_path, capsys):
    target = tmp_path / "out" / "rules.yml"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o640)
    assert main(["rules", "generate", str(slo_file), "-o", str(target),
                 "--format", "operator", "--time-scale", "60"]) == 0
    assert capsys.readouterr().out == ""
    text = target.read_text()
    assert text == render_rules(load_paths([slo_file]), fmt="operator", time_scale=60)
    assert list(target.parent.iterdir()) == [target]  # no temp file left behind
    assert target.stat().st_mode & 0o777 == 0o640  # the replaced file's mode is kept


def test_new_output_file_gets_the_usual_mode_not_mkstemps_0600(slo_file, tmp_path):
    target = tmp_path / "new.yml"
    assert main(["rules", "generate", str(slo_file), "-o", str(target)]) == 0
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.parametrize("scale", ["0", "-2", "abc", "nan", "inf", ""])
def test_bad_time_scale_exits_2_with_one_line(slo_file, scale, capsys):
    assert main(["rules", "generate", str(slo_file), "--time-scale", scale]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--time-scale" in err and "Traceback" not in err


def test_bad_slo_file_exits_2_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SLO_FILE.replace("objective: 99.9", "objective: high"))
    assert main(["rules", "generate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and err.count("\n") == 1


def test_missing_output_directory_exits_2(slo_file, tmp_path, capsys):
    assert main(["rules", "generate", str(slo_file), "-o", str(tmp_path / "no" / "r.yml")]) == 2
    assert "-o" in capsys.readouterr().err


def test_unknown_format_is_a_usage_error(slo_file, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["rules", "generate", str(slo_file), "--format", "thanos"])
    assert exc.value.code == 2
