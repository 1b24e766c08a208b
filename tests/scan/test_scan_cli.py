"""``tokenslo scan`` end to end through the CLI: exit codes, output forms, skipped files,
and no secret on stdout or stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from tokenslo.cli import main
from tokenslo.scan.detect import fingerprint

KEY = OctKey.generate_key(256)
LIVE = jwt.encode({"alg": "HS256"}, {"sub": "ci", "exp": int(time.time()) + 3600}, KEY)
DEAD = jwt.encode({"alg": "HS256"}, {"sub": "ci", "exp": int(time.time()) - 3600}, KEY)
CLIENT_SECRET = "Zq8dN3vR7pLw2XkT9mYb"  # pragma: allowlist secret
SECRETS = (LIVE, DEAD, CLIENT_SECRET)


@pytest.fixture
def workspace(tmp_path):
    """A CI workspace: a leaky job log, a config with a client secret, clean files, a
    binary artifact. It sits in ``leaky-workspace``, the name the project's own CI scan
    of the test outputs excludes (tests/scan-exclude.txt)."""
    root = tmp_path / "leaky-workspace"
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "job.log").write_text(
        f"+ ./deploy.sh\n> Authorization: Bearer {LIVE}\n< HTTP/1.1 200 OK\nold token: {DEAD}\n"
    )
    (root / "ci.yaml").write_text(f"client_id: runner\nclient_secret: {CLIENT_SECRET}\n")
    (root / "README.txt").write_text("nothing to see\n")
    (root / "logs" / "artifact.bin").write_bytes(b"\x7fELF\0\0" + LIVE.encode())
    return root


def _assert_no_secret(*outputs: str) -> None:
    for out in outputs:
        for secret in SECRETS:
            assert not any(secret[i : i + 8] in out for i in range(len(secret) - 7))


def test_findings_exit_1_one_line_each(workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    assert main(["scan", "."]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"ci.yaml:2: secret keyword sha256:{fingerprint(CLIENT_SECRET)}"
    assert lines[1].startswith("logs/job.log:2: jwt (valid until ")
    assert lines[1].endswith(f"Z) sha256:{fingerprint(LIVE)}")
    assert lines[2].startswith("logs/job.log:4: jwt (expired at ")
    assert len(lines) == 3
    assert err == "tokenslo scan: skipped logs/artifact.bin: binary\n"
    _assert_no_secret(out, err)


def test_json_has_the_same_fields(workspace, capsys):
    assert main(["scan", "--json", str(workspace / "logs" / "job.log")]) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert document["skipped"] == []
    live, dead = document["findings"]
    assert live["file"] == str(workspace / "logs" / "job.log")
    assert (live["line"], live["kind"], live["status"]) == (2, "jwt", "valid")
    assert live["fingerprint"] == fingerprint(LIVE)
    assert live["expires"].endswith("Z")
    assert (dead["line"], dead["status"]) == (4, "expired")
    _assert_no_secret(out, err)


def test_clean_files_exit_0(workspace, capsys):
    assert main(["scan", str(workspace / "README.txt")]) == 0
    assert capsys.readouterr() == ("", "")


def test_files_over_the_limit_are_skipped_with_a_note(workspace, capsys):
    path = workspace / "logs" / "job.log"
    assert main(["scan", "--max-bytes", "10", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"tokenslo scan: skipped {path}: larger than 10 bytes ({path.stat().st_size})\n"


def test_a_missing_path_is_bad_input_exit_2(workspace, capsys):
    missing = workspace / "no-such.log"
    assert main(["scan", str(workspace / "ci.yaml"), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"tokenslo: {missing}: not found\n")


def test_as_a_program_the_secret_never_reaches_stdout_or_stderr(workspace):
    proc = subprocess.run(
        [sys.executable, "-m", "tokenslo", "scan", str(workspace)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert len(proc.stdout.splitlines()) == 3
    assert "Traceback" not in proc.stderr
    _assert_no_secret(proc.stdout, proc.stderr)


def test_excluded_files_are_not_scanned(workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)
    assert main(["scan", "--exclude", "*.yaml", "--exclude", "logs/*.bin", "."]) == 1
    out, err = capsys.readouterr()
    assert [line.split(":")[0] for line in out.splitlines()] == ["logs/job.log"] * 2
    assert err == ""
    assert main(["scan", "--exclude", "*/job.log", "--exclude", "ci.yaml", "."]) == 0


def test_exclude_from_reads_patterns_and_comments(workspace, tmp_path, capsys):
    patterns = tmp_path / "exclude.txt"
    patterns.write_text("# secret stores by design\nci.yaml   # the runner's config\n\nlogs/*\n")
    assert main(["scan", "--exclude-from", str(patterns), str(workspace)]) == 0
    assert capsys.readouterr() == ("", "")
    missing = tmp_path / "nope.txt"
    assert main(["scan", "--exclude-from", str(missing), str(workspace)]) == 2
    assert capsys.readouterr().err.startswith(f"tokenslo: {missing}: cannot read")


def test_the_ci_exclusions_spare_every_kind_of_output():
    """The CI scan of what the tests write (scripts/test) skips only inputs that hold
    secrets by design; reports, journals, gate results and logs are always scanned."""
    from tokenslo.scan.files import excluded, read_patterns

    patterns = read_patterns(str(Path(__file__).parents[1] / "scan-exclude.txt"))
    outputs = [
        "test_gameday0/run/journal-idp-outage.json",
        "test_x0/out/report.html",
        "test_x0/out/report.md",
        "test_gate0/gate.json",
        "test_lab0/state/logs/gateway.log",
        "test_lab0/state/logs/idp.log",
        "test_x0/console.txt",
        "test_lab0/state/state.json",
    ]
    assert [o for o in outputs if excluded(o, patterns)] == []
    assert excluded("test_scan0/leaky-workspace/logs/job.log", patterns)
