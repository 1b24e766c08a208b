"""Pre-flight: a scenario whose endpoints the target does not advertise is refused before load.

The target is a real HTTP server publishing RFC 8414 metadata without an
introspection endpoint (as many providers do); nothing listens at its token endpoint,
so any request that got through would fail loudly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from support import ServedApp, write_target
from tokenslo.prometheus.process import free_port

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PREFLIGHT_SECRET": "never-sent"}


def _target(tmp_path: Path, idp: tuple[str, str]) -> Path:
    """Discover at the served URL; the metadata names another (closed) issuer."""
    served, issuer = idp
    client = {"client_id": "c", "secret": {"env": "PREFLIGHT_SECRET"}}
    return write_target(tmp_path / "target.yaml", {"issuer": issuer, "discovery_url": served,
        "clients": {"load": client, "introspection": client}})  # fmt: skip


@pytest.fixture(scope="module")
def idp_without_introspection():
    closed = f"http://127.0.0.1:{free_port()}"

    async def metadata(request):
        return JSONResponse({"issuer": closed, "token_endpoint": closed + "/token"})

    app = Starlette(routes=[Route("/.well-known/oauth-authorization-server", metadata)])
    served = ServedApp(app).start()
    yield served.url, closed
    served.stop()


def test_loadtest_run_refuses_in_one_line_before_locust_starts(idp_without_introspection, tmp_path):
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "tokenslo", "loadtest", "run", "--scenario", "introspection",
         "--duration", "60s", "--target", str(_target(tmp_path, idp_without_introspection)),
         "--workdir", str(work),
         "--gate", str(REPO / "slo")],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert "scenario introspection needs introspection_endpoint" in lines[0]
    assert "/.well-known/oauth-authorization-server" in lines[0]  # the document it read
    assert not (work / "locust.log").exists()  # refused before Locust started


def test_plain_locust_refuses_before_its_users_send_anything(idp_without_introspection, tmp_path):
    out = tmp_path / "rec.json"
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "loadtests" / "introspection.py")]
    cmd += ["--headless", "-u", "2", "-r", "2", "-t", "60s", "--only-summary"]
    target = _target(tmp_path, idp_without_introspection)
    env = {**ENV, "TOKENSLO_RECORDER_OUT": str(out), "TOKENSLO_TARGET_FILE": str(target)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    recorded = json.loads(out.read_text())
    assert recorded["stopped"].startswith("scenario introspection needs introspection_endpoint")
    assert sum(s["requests"] for s in recorded["names"].values()) == 0
    assert done.stderr.count("needs introspection_endpoint") == 1, done.stderr[-2000:]
