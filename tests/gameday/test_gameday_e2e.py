"""End to end: a shortened game day against a real lab on free ports, through the CLI.

* ``test_shortened_game_day``: idp-outage (expected to hold) and clock-skew-beyond-
  leeway (expected to deviate, its page detected) → exit 0; result.json, the HTML
  and the Markdown report checked; the lab the game day started is down again.
* ``test_ctrl_c_rolls_back_and_writes_a_partial_report``: SIGINT while a fault is
  active → exit 130, no fault or clock offset left, no load process left, a report
  marked interrupted; the lab (kept with --keep) is brought down by the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from support import assert_no_secrets, lab_secrets
from tokenslo.chaos import theory
from tokenslo.lab.orchestrator import lab_down
from tokenslo.lab.state import load_state
from tokenslo.prometheus.process import free_port, pid_alive, proc_start_time
from tokenslo.spec.loader import load_paths

pytestmark = [pytest.mark.lab, pytest.mark.chaos, pytest.mark.slow, pytest.mark.prometheus]

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 60
ADMIN_HEADER = "X-Tokenslo-Admin-Secret"


def write_game_day(tmp: Path, experiments: list[dict], warmup: str = "5s") -> Path:
    ports = {n: free_port() for n in ("idp", "gateway", "webhook", "prometheus", "alertmanager")}
    (tmp / "lab.yaml").write_text(yaml.safe_dump({"ports": ports}))
    plan = {
        "title": "Shortened game day",
        "target": {"kind": "lab", "lab_config": str(tmp / "lab.yaml")},
        "time_scale": TIME_SCALE,
        "slo_paths": [str(REPO / "slo")],
        "experiments_dir": str(REPO / "experiments"),
        # The light paced driver keeps CI short; the default game day uses Locust.
        "load": {"driver": "loadgen", "rate": 5, "warmup": warmup},
        "recovery_timeout": "90s",
        "experiments": experiments,
    }
    path = tmp / "gameday.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def gameday_argv(plan: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "tokenslo", "gameday", str(plan),
        "--state-dir", str(tmp / "state"), "--out", str(tmp / "reports"), *extra,
    ]  # fmt: skip


def run_game_day(plan: Path, tmp: Path, timeout: float = 420) -> subprocess.CompletedProcess:
    """The game day through the CLI (its output captured); its lab is down afterwards."""
    try:
        return subprocess.run(
            gameday_argv(plan, tmp, "--no-progress"),
            cwd=tmp, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    finally:
        lab_down(tmp / "state")  # only if the game day failed to


def report_dir(tmp: Path) -> Path:
    dirs = [p for p in (tmp / "reports").iterdir() if p.is_dir()]
    assert len(dirs) == 1 and not dirs[0].name.startswith("."), dirs  # no partial left over
    return dirs[0]


def procs_mentioning(path: Path) -> list[int]:
    """PIDs whose command line names ``path`` (our processes all name their state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(int(entry.name))
    return found


def _wait_for_alert_output(journal: Path) -> dict:
    (output,) = [
        r["output"]
        for r in json.loads(journal.read_text())["run"]
        if r.get("activity", {}).get("provider", {}).get("func") == "wait_for_alert"
    ]
    return output


def test_shortened_game_day(tmp_path):
    plan = write_game_day(
        tmp_path,
        [
            {"name": "idp-outage", "expect": "held"},
            {"name": "clock-skew-beyond-leeway", "expect": "deviated"},
        ],
    )
    state = tmp_path / "state"
    proc = run_game_day(plan, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "MET" in proc.stdout and "idp-outage" in proc.stdout

    out = report_dir(tmp_path)
    result = json.loads((out / "result.json").read_text())
    assert result["interrupted"] is False and result["exit_code"] == 0 and result["all_met"]
    assert result["time_scale"] == TIME_SCALE and result["target"]["started_by_gameday"]
    by_name = {e["name"]: e for e in result["experiments"]}
    assert list(by_name) == ["idp-outage", "clock-skew-beyond-leeway"]
    assert by_name["idp-outage"]["outcome"] == "held"
    assert by_name["clock-skew-beyond-leeway"]["outcome"] == "deviated"
    slos = {s.name: s for s in load_paths([REPO / "slo"])}
    for experiment in by_name.values():
        assert experiment["met"] and experiment["misses"] == [], experiment
        (detection,) = experiment["detections"]
        slo, severity = detection["alert"].split("/")
        probe = _wait_for_alert_output(out / experiment["journal"])
        expected = theory.first_to_fire(slos[slo], severity, 1.0, TIME_SCALE)
        assert probe["steady_theory_seconds"] == pytest.approx(expected.theory_seconds, abs=0.01)
        # The verdict's theory starts from what the windows held at the injection: the
        # game day's own load (a fresh lab).
        held = {w: c for w, c in probe["held_at_injection"].items() if isinstance(c, dict)}
        assert held and all(c["events"] > 0 for c in held.values()), held
        assert detection["theory_seconds"] == probe["theory_seconds"] > probe["for_seconds"]
        assert detection["fired"] and detection["within"]
        assert (
            0
            < detection["detection_seconds"]
            <= (detection["theory_seconds"] + detection["slack_seconds"])
        )
        assert detection["alert"] in experiment["fired_alerts"]
        assert detection["alert"] in experiment["delivered_alerts"]
        assert experiment["recovery_seconds"] is not None
        assert (out / experiment["journal"]).is_file()
    assert by_name["idp-outage"]["expected_alerts"] == ["token-issuance-availability/page"]
    assert by_name["clock-skew-beyond-leeway"]["expected_alerts"] == [
        "token-validation-success/page"
    ]

    kinds = {(e["kind"], e["experiment"]) for e in result["timeline"]}
    for name in by_name:
        for kind in ("experiment_started", "fault_injected", "fault_cleared",
                     "alert_firing", "alert_delivered", "slos_recovered"):  # fmt: skip
            assert (kind, name) in kinds, (kind, name)

    html = (out / "gameday.html").read_text()
    assert "idp-outage" in html and "clock-skew-beyond-leeway" in html
    markdown = (out / "gameday.md").read_text()
    assert "| experiment | status |" in markdown
    assert "| idp-outage | passed |" in markdown
    assert "| clock-skew-beyond-leeway | passed |" in markdown

    assert load_state(state) is None  # the game day started the lab, so it stopped it
    assert procs_mentioning(state) == []

    # Nothing the game day wrote or printed (results, reports, chaos journals, its own
    # and the lab's logs) holds a secret the run used.
    (tmp_path / "console.txt").write_text(proc.stdout + proc.stderr)
    written = [p for p in [*out.rglob("*"), *state.rglob("*.json"), *state.rglob("*.log")]
               if p.is_file() and p.name not in ("idp-keys.json",)]  # fmt: skip
    journals = [p for p in written if "journal" in p.name or "chaos-runs" in str(p)]
    assert journals, written
    assert assert_no_secrets([*written, tmp_path / "console.txt"], lab_secrets(state)) > 5


def faults_active(state_dir: Path) -> bool:
    lab = load_state(state_dir)
    if lab is None:
        return False
    secret = lab.admin_secret()
    for name in ("idp", "gateway"):
        try:
            body = requests.get(
                lab.urls[name] + "/admin/faults", headers={ADMIN_HEADER: secret}, timeout=2
            ).json()
        except (requests.RequestException, ValueError):
            return False
        if body.get("faults") or body.get("clock"):
            return True
    return False


def test_ctrl_c_rolls_back_and_writes_a_partial_report(tmp_path):
    plan = write_game_day(
        tmp_path,
        [{"name": "idp-outage", "expect": "held"}, {"name": "jwks-unavailable", "expect": "held"}],
        warmup="2s",
    )
    state = tmp_path / "state"
    log = (tmp_path / "gameday.log").open("w")
    proc = subprocess.Popen(
        gameday_argv(plan, tmp_path, "--keep"), cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 180
        while not faults_active(state):
            assert proc.poll() is None, (tmp_path / "gameday.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no fault became active"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=240) == 130, (tmp_path / "gameday.log").read_text()[-3000:]

        lab = load_state(state)
        assert lab is not None  # --keep: still up, so its admin API can be asked
        for name in ("idp", "gateway"):
            active = lab.admin(name).list_faults()
            assert active["faults"] == [] and active["clock"] is None, (name, active)
        lab_pids = {c.pid for c in lab.components.values()}
        for record in (state / "chaos-runs").glob("*.json"):
            for process in json.loads(record.read_text()).get("processes", {}).values():
                alive = pid_alive(process["pid"])
                assert not (alive and proc_start_time(process["pid"]) == process["start_time"])
        assert set(procs_mentioning(state)) <= lab_pids  # only the lab itself (kept)

        result = json.loads((report_dir(tmp_path) / "result.json").read_text())
        assert result["interrupted"] is True and result["exit_code"] == 130
        assert result["experiments"][0]["status"] == "interrupted"
        assert result["not_run"] == ["jwks-unavailable"]
        assert "nterrupted" in (report_dir(tmp_path) / "gameday.md").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        lab_down(state)
    assert procs_mentioning(state) == []
