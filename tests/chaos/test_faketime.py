"""libfaketime: the ELF checks, the environment rules, and real targets under the real
library (Debian ``faketime``): a CPython HTTP server and the lab IdP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tokenslo.chaos import faketime as ft
from tokenslo.errors import CheckFailed, InputError
from tokenslo.lab.idp.clients import hash_secret
from tokenslo.prometheus.process import free_port

LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)
needs_libfaketime = pytest.mark.skipif(LIBFAKETIME is None, reason="Debian package faketime")
needs_cc = pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler")

CHECK_SERVER = textwrap.dedent(
    """
    import http.server, json, sys, threading, time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            out = {}
            if self.path == "/check":
                start = time.perf_counter()
                threading.Event().wait(0.2)
                out["wait"] = time.perf_counter() - start
                start = time.perf_counter()
                try:
                    time.sleep(0.1)
                    out["sleep"] = time.perf_counter() - start
                except OSError as exc:
                    out["sleep_error"] = str(exc)
            body = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)


# -- which programs libfaketime can affect ---------------------------------------------------


def test_dynamic_python_is_fakeable():
    info = ft.check_fakeable(sys.executable)
    assert info.dynamic and not info.go
    assert "ld-linux" in info.interpreter


@needs_cc
def test_statically_linked_program_is_refused(tmp_path: Path):
    source = tmp_path / "hello.c"
    source.write_text("#include <time.h>\nint main(void){return time(0) > 0 ? 0 : 1;}\n")
    static = tmp_path / "hello-static"
    built = subprocess.run(
        ["cc", "-static", "-o", str(static), str(source)], capture_output=True, timeout=120
    )
    if built.returncode != 0:
        pytest.skip("no static libc to link against")
    dynamic = tmp_path / "hello-dynamic"
    subprocess.run(["cc", "-o", str(dynamic), str(source)], check=True, timeout=120)
    with pytest.raises(InputError, match="statically linked") as caught:
        ft.check_fakeable(str(static))
    assert str(static) in str(caught.value)
    assert ft.check_fakeable(str(dynamic)).dynamic


@pytest.mark.skipif(not shutil.which("prometheus"), reason="needs a Go binary (prometheus)")
def test_go_program_is_refused_even_when_dynamically_linked():
    path = shutil.which("prometheus")
    with pytest.raises(InputError, match="Go program"):
        ft.check_fakeable(path)


def test_scripts_are_judged_by_their_interpreter(tmp_path: Path):
    script = tmp_path / "validator"
    script.write_text("#!/usr/bin/env -S python3 -u\nprint('hi')\n")
    assert ft.check_fakeable(str(script)).dynamic
    if shutil.which("prometheus"):
        wrapped = tmp_path / "wrapped"
        wrapped.write_text(f"#!{shutil.which('prometheus')}\n")
        with pytest.raises(InputError, match="Go program"):
            ft.check_fakeable(str(wrapped))


def test_non_elf_and_truncated_files_are_clear_input_errors(tmp_path: Path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not an ELF"):
        ft.check_fakeable(str(text))
    with pytest.raises(InputError, match="truncated"):
        ft.parse_elf(b"\x7fELF\x02\x01" + b"\0" * 50)
    with pytest.raises(InputError, match="not found"):
        ft.check_fakeable("no-such-program-tokenslo")


# -- environment rules (pure) ------------------------------------------------------------------

LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SHIM = f"/tmp/x/{ft.SHIM_NAME}-abc.so"
GOOD = {
    "LD_PRELOAD": f"{SHIM}:{LIB}",
    "FAKETIME_TIMESTAMP_FILE": "/tmp/x/offset",
    "FAKETIME_NO_CACHE": "1",
    "FAKETIME_DONT_FAKE_MONOTONIC": "1",
}


@pytest.mark.parametrize(
    ("change", "python", "severity", "needle"),
    [
        ({}, True, None, None),
        ({"LD_PRELOAD": SHIM}, False, "refuse", "does not load libfaketime"),
        ({"LD_PRELOAD": LIB}, False, "refuse", ft.ISSUE_EINVAL),
        ({"LD_PRELOAD": f"{LIB}:{SHIM}"}, False, "refuse", ft.ISSUE_EINVAL),  # shim must be first
        ({"FAKETIME_DONT_FAKE_MONOTONIC": None}, True, "refuse", ft.ISSUE_HANG),
        ({"FAKETIME_DONT_FAKE_MONOTONIC": None}, False, "warn", ft.ISSUE_HANG),
        ({"FAKETIME_NO_CACHE": None}, True, "warn", "FAKETIME_NO_CACHE"),
        ({"FAKETIME_TIMESTAMP_FILE": "/elsewhere"}, True, "refuse", "not /tmp/x/offset"),
        ({"FAKETIME": "+1d"}, True, "refuse", "overrides"),
    ],
)
def test_env_problems(change: dict, python: bool, severity: str | None, needle: str | None):
    env = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    problems = ft.env_problems(env, "/tmp/x/offset", python=python)
    if severity is None:
        assert problems == []
    else:
        assert [p.severity for p in problems if needle in p.message] == [severity]


def test_offsets_are_written_atomically_in_libfaketime_syntax(tmp_path: Path):
    path = tmp_path / "offset"
    for value, text in (
        (3600, "+3600"),
        (-120, "-120"),
        (0, "+0"),
        (1.5, "+1.5"),
        (-0.25, "-0.25"),
    ):
        ft.write_offset(path, value)
        assert path.read_text() == text + "\n"
    assert list(tmp_path.iterdir()) == [path]  # no temporary files left behind
    for bad in (float("nan"), True, "60", 1e12):
        with pytest.raises(InputError, match="offset_seconds"):
            ft.write_offset(path, bad)


# -- real targets under libfaketime ------------------------------------------------------------


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler for the monotonic shim")
    return ft.build_monotonic_shim(tmp_path_factory.mktemp("shim"))


@pytest.fixture
def start_target(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, str]]]:
    """Start ``argv`` with extra env vars; wait for ``ready_path``; always stopped by PID."""
    started: list[subprocess.Popen] = []

    def start(argv: list[str], env: dict[str, str], port: int, ready_path: str = "/"):
        log = (tmp_path / f"target-{len(started)}.log").open("wb")
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=log)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / f"target-{len(started) - 1}.log").read_text()
            try:
                requests.get(url + ready_path, timeout=1)
                return proc, url
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError("target did not start")

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def check_server(start_target, tmp_path: Path, env: dict[str, str]):
    script = tmp_path / "check_server.py"
    script.write_text(CHECK_SERVER)
    port = free_port()
    return start_target([sys.executable, str(script), str(port)], env, port)


@needs_libfaketime
def test_recommended_settings_shift_date_and_keep_timed_waits_and_sleep_working(
    tmp_path: Path, shim: Path, start_target
):
    offset_file = tmp_path / "offset"
    ft.write_offset(offset_file, 0)
    env = ft.recommended_env(offset_file, shim)
    proc, url = check_server(start_target, tmp_path, env)

    result = ft.set_faketime_offset(str(offset_file), 3600, url + "/", target_pid=proc.pid)
    assert abs(result["observed_offset_seconds"] - 3600) <= 2
    assert result["warnings"] == []
    checks = requests.get(url + "/check", timeout=5).json()  # bounded: hangs would time out
    assert 0.2 <= checks["wait"] < 1.0
    assert 0.1 <= checks["sleep"] < 1.0, checks

    # Changed at run time (FAKETIME_NO_CACHE=1): behind by two minutes, then back to zero.
    behind = ft.set_faketime_offset(str(offset_file), -120, url + "/", verify_timeout=5)
    assert abs(behind["observed_offset_seconds"] + 120) <= 2
    cleared = ft.clear_faketime_offset(str(offset_file), url + "/", verify_timeout=5)
    assert abs(cleared["observed_offset_seconds"]) <= 2
    assert requests.get(url + "/check", timeout=5).json()["sleep"] >= 0.1


@needs_libfaketime
def test_dont_fake_monotonic_without_shim_breaks_sleep_and_is_refused(tmp_path: Path, start_target):
    offset_file = tmp_path / "offset"
    ft.write_offset(offset_file, 0)
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    proc, url = check_server(start_target, tmp_path, env)
    checks = requests.get(url + "/check", timeout=5).json()
    assert "Invalid argument" in checks["sleep_error"]  # the trap is real (#426)
    with pytest.raises(InputError, match="426"):
        ft.set_faketime_offset(str(offset_file), 60, url + "/", target_pid=proc.pid)
    assert offset_file.read_text() == "+0\n"  # refused before touching the clock


@needs_libfaketime
def test_faked_monotonic_hangs_timed_waits_and_is_refused_for_python(tmp_path: Path, start_target):
    offset_file = tmp_path / "offset"
    ft.write_offset(offset_file, 0)
    env = {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
    }
    proc, url = check_server(start_target, tmp_path, env)
    with pytest.raises(InputError, match="390"):
        ft.set_faketime_offset(str(offset_file), 60, url + "/", target_pid=proc.pid)
    with pytest.raises(requests.Timeout):  # Event.wait(0.2) never returns (#390)
        requests.get(url + "/check", timeout=2)


def test_offset_that_does_not_take_effect_fails_clearly(tmp_path: Path, start_target):
    offset_file = tmp_path / "offset"
    proc, url = check_server(start_target, tmp_path, {})  # not under libfaketime at all
    with pytest.raises(CheckFailed, match="did not take effect") as caught:
        ft.set_faketime_offset(str(offset_file), 300, url + "/", verify_timeout=1)
    assert "+300" in str(caught.value)
    with pytest.raises(InputError, match="does not load libfaketime"):
        ft.set_faketime_offset(str(offset_file), 300, url + "/", target_pid=proc.pid)


@needs_libfaketime
def test_lab_idp_under_libfaketime_issues_tokens_with_shifted_iat_and_stops_cleanly(
    tmp_path: Path, shim: Path, start_target
):
    secret = "faketime-client-secret-0123456789abcdef"
    clients = tmp_path / "clients.yaml"
    clients.write_text(
        yaml.safe_dump(
            {
                "clients": [
                    {
                        "client_id": "prober",
                        "secret_sha256": hash_secret(secret),
                        "scopes": ["read"],
                        "audiences": ["api://lab"],
                    }
                ]
            }
        )
    )
    port = free_port()
    config = tmp_path / "idp.yaml"
    config.write_text(
        yaml.safe_dump({"host": "127.0.0.1", "port": port, "clients_file": str(clients)})
    )
    offset_file = tmp_path / "offset"
    ft.write_offset(offset_file, 0)
    env = {**ft.recommended_env(offset_file, shim), "TOKENSLO_ADMIN_SECRET": "admin-0123456789"}
    argv = [sys.executable, "-m", "tokenslo.lab.idp", "--config", str(config)]
    proc, url = start_target(argv, env, port, "/healthz")

    ahead = ft.set_faketime_offset(
        str(offset_file),
        600,
        url + "/token",
        verify="iat",
        target_pid=proc.pid,
        client_id="prober",
        client_secret=secret,
        verify_timeout=5,
    )
    assert abs(ahead["observed_offset_seconds"] - 600) <= 2
    # The fault engine's sweeper thread waits with Event.wait: SIGTERM must still stop it.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_iat_verification_needs_credentials():
    with pytest.raises(InputError, match="client_secret"):
        ft.set_faketime_offset("/tmp/x", 60, "http://127.0.0.1:1/token", verify="iat")
    with pytest.raises(InputError, match="verify"):
        ft.set_faketime_offset("/tmp/x", 60, "http://127.0.0.1:1/", verify="ntp")
