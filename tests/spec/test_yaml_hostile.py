"""Hostile YAML: alias bombs, deep nesting and tags are refused on the event stream.

Every YAML input goes through ``tokenslo.spec.yamlpos``; each refusal is one line at
file:line, exit 2, and costs nothing (the time and memory it takes are measured by
``benchmarks/bench_yaml_hostile.py``, not asserted here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import alias_bomb, deep_yaml
from tokenslo.cli import main
from tokenslo.errors import InputError
from tokenslo.spec.yamlpos import MAX_DEPTH, load_documents, parse_document, read_document

VALID_HEAD = "version: tokenslo/v1\nservice: idp\n"


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokenslo", "slo", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "text", "line", "words"),
    [
        ("bomb", alias_bomb(), 1, "anchor &a is not allowed"),
        ("deep", deep_yaml(5000), 1, f"nested deeper than {MAX_DEPTH} levels"),
    ],
)
def test_bombs_fail_slo_validate_with_one_line_exit_2(tmp_path, name, text, line, words):
    """Must show 1: a ~300-byte alias bomb and a 5,000-deep file, through the real CLI."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    assert len(text.encode()) < 400 or name == "deep"
    result = _validate(path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tokenslo: {path}:{line}:")
    assert words in lines[0]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a: 1\nlabels: !!python/object/new:dict {a: b}\n", 2, "tag !!python/object/new:dict"),
        ("a: !!python/name:os.system x\n", 1, "tag !!python/name:os.system"),
        ("a: !!binary aGk=\n", 1, "tag !!binary"),
        ("a: !!set {x}\n", 1, "tag !!set"),
        ("a:\n  - !local x\n", 2, "tag !local"),
        ("a: &x 1\n", 1, "anchor &x"),
        ("a: 1\nb: *x\n", 2, "alias *x"),
        ("a: 1\nb:\n  <<: *base\n", 3, "alias *base"),
        ("a: " + "{b: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1) + "\n", 1, "deeper"),
        ("a: !!int abc\n", 1, "invalid value 'abc' for !!int"),
        ("when: 2026-13-45\n", 1, "invalid value '2026-13-45'"),
        ("? [a, b]\n: 1\n", 1, "mapping keys must be strings"),
        ("a: 1\n---\nb: 2\n", 3, "one YAML document"),
        ("a: \x00\n", 1, "is not allowed"),
    ],
)
def test_refusals_are_one_line_input_errors_at_their_line(text, line, words):
    with pytest.raises(InputError) as info:
        parse_document(text, "f.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert info.value.file == "f.yaml" and info.value.line == line, message
    assert words in message


def test_core_tags_and_plain_yaml_still_load():
    doc = parse_document(
        "a: !!str 5\nb: !!int '7'\nc: [1, {d: !!float '1.5'}]\nmerge:\n  <<: {x: 1}\n  y: 2\n",
        "ok.yaml",
    )
    assert doc.data == {"a": "5", "b": 7, "c": [1, {"d": 1.5}], "merge": {"x": 1, "y": 2}}
    assert doc.where(("c", 1, "d")) == (3, 12)
    assert [d.data for d in load_documents("a: 1\n---\nb: 2\n", "two.yaml")] == [{"a": 1}, {"b": 2}]


def test_exactly_max_depth_is_accepted_one_more_is_not():
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    value = parse_document(at_limit, "x.yaml").data
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    assert depth == MAX_DEPTH
    with pytest.raises(InputError, match="deeper"):
        parse_document("[" + at_limit + "]", "x.yaml")


def test_unreadable_and_non_utf8_files_are_input_errors(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(InputError, match="not UTF-8"):
        read_document(latin)
    with pytest.raises(InputError, match="cannot read"):
        read_document(tmp_path / "missing.yaml")


# -- every YAML input uses the same reader ---------------------------------------------------


def test_lab_config_refuses_an_alias_bomb(tmp_path, capsys):
    cfg = tmp_path / "lab.yaml"
    cfg.write_text(alias_bomb())
    assert main(["lab", "up", "--config", str(cfg), "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tokenslo: {cfg}:1:4: anchor &a is not allowed"
    assert not (tmp_path / "s").exists()


def test_gameday_file_refuses_tags(tmp_path, capsys):
    plan = tmp_path / "gd.yaml"
    plan.write_text("experiments: !!python/object/apply:os.system [ls]\n")
    args = ["gameday", str(plan), "--state-dir", str(tmp_path / "s"), "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tokenslo: {plan}:1:") and "tag !!python/object/apply" in err


def test_openslo_import_refuses_deep_nesting(tmp_path, capsys):
    src = tmp_path / "openslo.yaml"
    src.write_text(deep_yaml(2000))
    out = tmp_path / "out.yaml"
    assert main(["slo", "import-openslo", str(src), "-o", str(out)]) == 2
    assert "nested deeper than" in capsys.readouterr().err
    assert not out.exists()


def test_credentials_and_target_files_refuse_aliases(tmp_path):
    from tokenslo.lab.credentials import read_credentials
    from tokenslo.lab.gateway.config import load_credentials
    from tokenslo.target.credentials import credentials
    from tokenslo.target.loader import load_target
    from tokenslo.target.model import Client, SecretRef

    creds = tmp_path / "credentials.yaml"
    creds.write_text("base: &b {client_id: loadtest, client_secret: s3cret}\nclients: [*b]\n")
    creds.chmod(0o600)
    client = Client("load", "loadtest", SecretRef(file=creds))
    for read in (read_credentials, load_credentials, lambda _p: credentials(client)):
        with pytest.raises(InputError) as info:
            read(creds)
        assert info.value.line == 1 and "anchor &b" in str(info.value)
        assert "s3cret" not in str(info.value)
    target = tmp_path / "target.yaml"
    target.write_text(
        "version: tokenslo/target/v1\nissuer: &i http://127.0.0.1:1\n"
        "clients: {load: {client_id: *i, secret: {env: X}}}\n"
    )
    with pytest.raises(InputError) as info:
        load_target(target)
    assert info.value.line == 2 and "anchor &i" in str(info.value)


def test_experiment_refuses_aliases(tmp_path):
    from tokenslo.chaos.runner import load_experiment

    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({"title": "t", "method": []}).replace('"t"', "&t x") + "\n")
    with pytest.raises(InputError, match="anchor &t"):
        load_experiment(exp)


def test_slo_validate_imports_only_its_own_command_modules(tmp_path):
    """The refusal costs nothing, so start-up dominates: `slo validate` must not import the
    proxy's aiohttp, the lab or Locust (measured in benchmarks/bench_yaml_hostile.py)."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    code = (
        "import sys\n"
        "from tokenslo.cli import main\n"
        f"assert main(['slo', 'validate', {str(path)!r}]) == 2\n"
        "print(sorted(m for m in ('aiohttp', 'locust', 'tokenslo.lab.orchestrator', "
        "'tokenslo.proxy.app', 'uvicorn') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
