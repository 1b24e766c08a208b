"""Every subcommand documents itself, and usage errors are one line with exit 2."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from tokenslo.cli import build_parser, main


def _leaf_commands() -> list[list[str]]:
    leaves: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            leaves.append(prefix)
            return
        for name, child in subs[0].choices.items():
            walk(child, [*prefix, name])

    walk(build_parser(), [])
    return leaves


EXPECTED = [
    ["slo", "validate"], ["slo", "schema"], ["slo", "import-openslo"], ["slo", "status"],
    ["slo", "export-openslo"],
    ["slo", "backtest"], ["rules", "generate"], ["lab", "up"], ["lab", "down"], ["lab", "status"],
    ["loadtest", "run"], ["chaos", "run"], ["chaos", "validate"], ["dashboards", "render"],
    ["report", "slo"], ["probe"], ["proxy"], ["gameday"], ["chaos", "list"],
]


def test_the_documented_subcommands_exist():
    leaves = _leaf_commands()
    assert [c for c in EXPECTED if c not in leaves] == []


@pytest.mark.parametrize("command", _leaf_commands(), ids=" ".join)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: tokenslo " + " ".join(command))


def test_unknown_command_is_a_one_line_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "tokenslo", "frobnicate"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2  # usage line + error line


def test_group_without_subcommand_prints_its_help_and_exits_2(capsys):
    assert main(["slo"]) == 2
    assert "usage: tokenslo slo" in capsys.readouterr().err
