"""Response judging, shapes and CLI/runner argument building (targets: tests/target)."""

from __future__ import annotations

import argparse
import json

import pytest

from support import write_target
from tokenslo.errors import InputError, UnavailableError
from tokenslo.load import cli, earlystop, pacing, preflight, shapes
from tokenslo.load.protocol import NEEDS, TokenSet, judge, oauth_error
from tokenslo.load.recorder import Recorder
from tokenslo.load.runner import locust_env, master_command, worker_command
from tokenslo.load.target import resolve_target
from tokenslo.target import discovery

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
        (200, None, "access_token", "200 but the body has no 'access_token'"),
        (503, {"error": "temporarily_unavailable"}, None, "503 temporarily_unavailable"),
        (0, None, None, "connection error"),
        (200, {"active": "yes"}, "active", "200 but 'active' is not a boolean"),
        (200, {"active": False}, "active", None),
        (401, None, None, "401"),
        (401, {"error": "invalid_client"}, None, "401 invalid_client"),
        (400, {"error": "eyJhbGciOi token echoed back"}, None, "400"),  # never echo free text
        (400, {"error": "dGhpcyBpcyBhIHRva2Vu_x"}, None, "400"),  # nor anything token-like
    ],
)
def test_judge(status, body, required, problem):
    assert judge(status, body, required) == problem


def test_oauth_error_of_a_judge_message():
    assert oauth_error("401 invalid_client") == "invalid_client"
    assert oauth_error("503") is None and oauth_error("connection error") is None
    assert oauth_error(None) is None


# -- early stop -------------------------------------------------------------------------------


def test_watch_trips_once_when_the_first_n_responses_are_all_unexplained_errors():
    watch = earlystop.Watch(first=3)
    assert watch.observe("token:client_credentials", "401 invalid_client") is None
    assert watch.observe("jwks", None) is None  # another name that works does not matter
    assert watch.observe("token:client_credentials", "401 invalid_client") is None
    reason = watch.observe("token:client_credentials", "401 invalid_client")
    assert reason is not None and "first 3 token:client_credentials" in reason
    assert "401 invalid_client ×3" in reason
    assert watch.observe("introspect", "400 unsupported_token_type") is None  # trips only once


@pytest.mark.parametrize("other", [None, "503", "connection error", "400 invalid_grant"])
def test_watch_never_trips_on_a_name_that_answered_anything_else(other):
    watch = earlystop.Watch(first=3)
    watch.observe("introspect", "400 unsupported_token_type")
    watch.observe("introspect", other)  # success, or a failure load can explain
    assert all(watch.observe("introspect", "400 unsupported_token_type") is None for _ in range(9))


# -- pre-flight and scope -----------------------------------------------------------------------


def _endpoints(**kw) -> discovery.Endpoints:
    base = dict(issuer="i", token_endpoint="http://h/token", metadata_url="http://h/.well-known/x")
    return discovery.Endpoints(**{**base, **kw})


def test_needs_cover_every_scenario_with_known_endpoints():
    fields = set(discovery.Endpoints.__dataclass_fields__)
    assert all(set(n.endpoints) <= fields for n in NEEDS.values())


def test_preflight_refuses_a_missing_endpoint_in_one_line_naming_scenario_and_field():
    with pytest.raises(UnavailableError) as err:
        preflight.check("introspection", _endpoints(), None)
    text = str(err.value)
    assert "scenario introspection needs introspection_endpoint" in text
    assert "http://h/.well-known/x" in text and "\n" not in text
    mixed = preflight.problem("mixed", _endpoints(jwks_uri="j"), None)
    assert mixed and "introspection_endpoint and revocation_endpoint" in mixed
    preflight.check("issuance", _endpoints(), None)  # needs only the token endpoint
    with pytest.raises(InputError) as err:
        preflight.check("api", _endpoints(), None)
    assert err.value.field == "api.url"


def test_scope_drops_the_api_without_a_url_and_names_the_target_made_moot():
    rec = Recorder()
    rec.record("token:client_credentials", 1.0, None)
    rec.note_unsent("token:refresh_token", "no refresh tokens")
    scope = preflight.scope("mixed", None, rec)
    assert "api:resource" not in scope.sent and "token:refresh_token" not in scope.sent
    assert "no API URL" in scope.unsent["api:resource"]
    assert scope.unsent["token:refresh_token"].endswith("no refresh tokens")
    rec.record("token:refresh_token", 1.0, None)  # sent after all (some grants had one)
    assert "token:refresh_token" in preflight.scope("mixed", "http://api", rec).sent


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


def test_preflight_refuses_a_scenario_whose_client_role_is_missing():
    endpoints = _endpoints(introspection_endpoint="http://h/introspect")
    with pytest.raises(UnavailableError) as err:
        preflight.check("introspection", endpoints, None, frozenset({"load"}))
    assert "needs a client in role introspection" in str(err.value)
    preflight.check("introspection", endpoints, None, frozenset({"load", "introspection"}))
    scope = preflight.scope("mixed", "http://api", Recorder(), frozenset({"load"}))
    assert "introspect" not in scope.sent
    assert "declares no introspection client" in scope.unsent["introspect"]
