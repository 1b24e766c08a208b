"""Response judging, shapes and CLI/runner argument building (targets: tests/target)."""

from __future__ import annotations

import argparse
import json

import pytest

from support import write_target
from tokenslo.errors import InputError
from tokenslo.load import cli, pacing, shapes
from tokenslo.load.protocol import TokenSet, judge
from tokenslo.load.runner import locust_env, master_command, worker_command
from tokenslo.load.target import resolve_target

SECRET = "s3cr3t-value"


def _target(tmp_path):
    path = write_target(
        tmp_path / "target.yaml",
        {"issuer": "http://127.0.0.1:9",
         "clients": {"load": {"client_id": "loadtest", "secret": {"env": "LOAD_SECRET"}}}},
    )  # fmt: skip
    return resolve_target(path, env={"LOAD_SECRET": SECRET})


@pytest.mark.parametrize(
    ("status", "body", "required", "problem"),
    [
        (200, {"access_token": "x"}, "access_token", None),
        (200, None, "access_token", "HTTP 200 but the body has no 'access_token'"),
        (503, {"error": "temporarily_unavailable"}, None, "HTTP 503 temporarily_unavailable"),
        (0, None, None, "no response"),
        (200, {"active": "yes"}, "active", "HTTP 200 but 'active' is not a boolean"),
        (200, {"active": False}, "active", None),
        (401, None, None, "HTTP 401"),
    ],
)
def test_judge(status, body, required, problem):
    assert judge(status, body, required) == problem


def test_token_is_renewed_at_ninety_percent_of_its_lifetime():
    tokens = TokenSet.from_response({"access_token": "a", "expires_in": 300}, now=1000.0)
    assert tokens.fresh(1269.9) and not tokens.fresh(1270.0)


def test_shapes():
    p = shapes.ShapeParams(users=20, spawn_rate=5, duration=100)
    assert shapes.ramp(p, 0)[0] == 1 and shapes.ramp(p, 40)[0] == 10 and shapes.ramp(p, 90)[0] == 20
    assert [shapes.step(p, t)[0] for t in (0, 30, 60, 99)] == [5, 10, 15, 20]
    assert [shapes.spike(p, t)[0] for t in (10, 50, 70)] == [4, 20, 4]
    assert shapes.soak(p, 50) == (20, 5) and shapes.soak(p, 100) is None
    assert all(fn(p, 100) is None for fn in shapes.SHAPES.values())
    with pytest.raises(InputError, match="unknown shape"):
        shapes.shape_class("wave")
    with pytest.raises(InputError, match="TOKENSLO_SHAPE_DURATION"):
        shapes.params_from_env({"TOKENSLO_SHAPE_DURATION": "soon"})


def _args(**kw):
    base = dict(
        scenario="mixed", users=20, spawn_rate=10.0, duration="30s", shape=None,
        processes=None, workers=0,
    )  # fmt: skip
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"scenario": "nope"}, "--scenario"),
        ({"duration": "soon"}, "--duration"),
        ({"duration": "0s"}, "--duration"),
        ({"users": 0}, "--users"),
        ({"spawn_rate": 0.0}, "--spawn-rate"),
        ({"workers": 2, "processes": 2}, "--workers"),
    ],
)
def test_bad_flags_are_input_errors(override, field):
    with pytest.raises(InputError) as err:
        cli.spec_from_args(_args(**override))
    assert err.value.field == field


def test_commands_bind_loopback_and_keep_secrets_out_of_argv(tmp_path):
    spec = cli.spec_from_args(_args(workers=2))
    target = _target(tmp_path)
    master = master_command(spec, target.idp_url, 5599)
    assert master[master.index("--master-bind-host") + 1] == "127.0.0.1"
    assert "--expect-workers" in master and "-t" in master and "30s" in master
    worker = worker_command(spec, 5599)
    assert worker[worker.index("--master-host") + 1] == "127.0.0.1"
    assert SECRET not in " ".join(master + worker)
    env = locust_env(spec, target, tmp_path / "out.json")
    assert SECRET not in json.dumps(env) and env["TOKENSLO_SCENARIO"] == "mixed"
    assert env["TOKENSLO_TARGET_FILE"] == str(tmp_path / "target.yaml")
    forked = master_command(cli.spec_from_args(_args(processes=2)), target.idp_url, 5600)
    assert "--processes" in forked and "--master" not in forked


# -- pacing -----------------------------------------------------------------------------------


def test_rate_is_shared_by_the_users_and_travels_in_the_environment(tmp_path):
    spec = cli.spec_from_args(_args(users=4, rate="10"))
    assert spec.pacing == pacing.Pacing("throughput", (2.5,))
    target = _target(tmp_path)
    env = locust_env(spec, target, tmp_path / "out.json")
    assert env[pacing.ENV_PACING] == "throughput:2.5"
    assert pacing.from_env(env) == spec.pacing  # what the Locust process reads back
    unpaced = locust_env(cli.spec_from_args(_args()), target, tmp_path / "out.json")
    assert pacing.ENV_PACING not in unpaced


def test_wait_range_becomes_between():
    assert cli.spec_from_args(_args(wait="0.5-2")).pacing == pacing.Pacing("between", (0.5, 2.0))
    assert pacing.from_wait("1") == pacing.Pacing("between", (1.0, 1.0))
    assert pacing.from_env({pacing.ENV_PACING: "between:0.5:2"}).values == (0.5, 2.0)
    assert pacing.from_env({}) is None


def test_pacing_makes_locust_wait_times():
    """In a subprocess: importing Locust monkey-patches the interpreter with gevent."""
    import subprocess
    import sys

    code = (
        "import random; random.seed(7)\n"
        "from tokenslo.load import pacing\n"
        "print(pacing.wait_time(None)(None))\n"
        "w = [pacing.wait_time(pacing.from_wait('0.2-0.4'))(None) for _ in range(200)]\n"
        "print(min(w), max(w))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.split("\n")
    low, high = map(float, lines[1].split())
    assert float(lines[0]) == 0.0
    assert 0.2 <= low < high <= 0.4 and high - low > 0.1


@pytest.mark.parametrize(
    ("override", "field", "fragment"),
    [
        ({"rate": "0"}, "--rate", "must be positive"),
        ({"rate": "fast"}, "--rate", "not a number"),
        ({"rate": "inf"}, "--rate", "finite"),
        ({"wait": "3-1"}, "--wait", "MIN <= MAX"),
        ({"wait": "-1"}, "--wait", "not a number"),
        ({"wait": "1-2", "rate": "5"}, "--wait", "either --rate or --wait"),
    ],
)
def test_bad_pacing_flags_are_input_errors(override, field, fragment):
    with pytest.raises(InputError) as err:
        cli.spec_from_args(_args(**override))
    assert err.value.field == field and fragment in str(err.value)


@pytest.mark.parametrize("raw", ["throughput:0", "throughput:x", "between:2:1", "poisson:3"])
def test_bad_pacing_environment_names_the_variable(raw):
    with pytest.raises(InputError) as err:
        pacing.from_env({pacing.ENV_PACING: raw})
    assert err.value.field == pacing.ENV_PACING
