"""The target description: parsing (file:line errors), secrets, discovery and check judges."""

from __future__ import annotations

import base64
import json

import pytest
import requests

from support import secret_file, write_target
from tokenslo.errors import InputError
from tokenslo.target import check, discovery
from tokenslo.target.credentials import Credentials, credentials, secrets_in
from tokenslo.target.loader import load_target, parse_target

SECRET = "s3cr3t-value"
MINIMAL = """version: tokenslo/target/v1
issuer: https://idp.example/realms/x/
clients:
  load:
    client_id: svc
    secret: {env: SVC_SECRET}
"""


def test_minimal_target_defaults_and_relative_paths(tmp_path):
    target = parse_target(MINIMAL, "t.yaml", base=tmp_path)
    assert target.issuer == "https://idp.example/realms/x"  # trailing slash dropped
    assert target.discovery_url == target.issuer  # no proxy: discover at the issuer
    assert target.name == "idp.example"
    assert target.state_dir == tmp_path / ".tokenslo/idp-example"  # a safe directory name
    assert target.client("load").secret.env == "SVC_SECRET"
    with pytest.raises(InputError, match="no client for role 'prober'") as err:
        target.client("prober")
    assert err.value.field == "clients.prober"


def test_the_write_route_and_the_narrow_scope_role():
    text = (
        MINIMAL
        + """  narrow_scope:
    client_id: reader
    secret: {env: READER_SECRET}
    token_params: {scope: api.read}
api: {url: https://api.example/items/, write_url: https://api.example/items/new}
"""
    )
    target = parse_target(text, "t.yaml")
    assert target.api_url == "https://api.example/items"
    assert target.api_write_url == "https://api.example/items/new"
    assert target.client("narrow_scope").token_params == {"scope": "api.read"}
    assert (
        parse_target(MINIMAL + "api: {url: https://a.example/x}\n", "t.yaml").api_write_url is None
    )


@pytest.mark.parametrize(
    ("extra", "line", "field", "message"),
    [
        ("api: {url: not-a-url}\n", 7, "api.url", "invalid value"),
        ("api: {url: 'http://a', write_url: nope}\n", 7, "api.write_url", "invalid value"),
        ("clientz: {}\n", 7, "clientz", "unknown field 'clientz'"),
        (
            "faults:\n  idp: {kind: proxy, admin_url: 'http://127.0.0.1:1'}\n",
            7,
            "faults",
            "needs admin_secret_file",
        ),
        (
            "faults:\n  admin_secret_file: s\n  gateway: {kind: proxy, admin_url: 'http://h'}\n",
            9,
            "faults.gateway.kind",
            "only the lab",
        ),
        ("provider: {introspects_jwt: 'no'}\n", 7, "provider.introspects_jwt", "true or false"),
    ],
)
def test_bad_targets_name_file_line_and_field(extra, line, field, message):
    with pytest.raises(InputError) as err:
        parse_target(MINIMAL + extra, "t.yaml")
    assert (err.value.file, err.value.line, err.value.field) == ("t.yaml", line, field)
    assert message in err.value.message


def test_a_secret_needs_exactly_one_source():
    text = MINIMAL.replace("{env: SVC_SECRET}", "{env: A, file: b}")
    with pytest.raises(InputError) as err:
        parse_target(text, "t.yaml")
    assert err.value.line == 6 and "exactly one of env / file" in err.value.message


def test_wrong_version_and_missing_default_file(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="expected 'tokenslo/target/v1'"):
        parse_target(MINIMAL.replace("target/v1", "target/v9"), "t.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOKENSLO_TARGET_FILE", raising=False)
    with pytest.raises(InputError, match="tokenslo lab up"):
        load_target()


def test_secrets_from_env_and_files_never_in_repr(tmp_path):
    target = parse_target(MINIMAL, "t.yaml", base=tmp_path)
    creds = credentials(target.client("load"), env={"SVC_SECRET": SECRET})
    assert creds == Credentials("svc", SECRET) and SECRET not in repr(creds)
    with pytest.raises(InputError, match="SVC_SECRET .* is not set"):
        credentials(target.client("load"), env={})
    lab_file = secret_file(
        tmp_path / "credentials.yaml",
        "clients:\n- {client_id: gateway, client_secret: g}\n"
        "- {client_id: svc, client_secret: x}\n",
    )
    text = MINIMAL.replace("{env: SVC_SECRET}", f"{{file: {lab_file.name}}}")
    from_file = parse_target(text, "t.yaml", base=tmp_path)
    assert credentials(from_file.client("load")).client_secret == "x"


def test_secret_files_must_be_private(tmp_path):
    path = tmp_path / "s"
    path.write_text(SECRET)
    path.chmod(0o644)
    text = MINIMAL.replace("{env: SVC_SECRET}", "{file: s}")
    target = parse_target(text, "t.yaml", base=tmp_path)
    with pytest.raises(InputError, match="chmod 600") as err:
        credentials(target.client("load"))
    assert SECRET not in str(err.value)


def test_secret_file_shapes():
    assert secrets_in("  a:b#c  \n", "f") == {"": "a:b#c"}  # a bare secret, verbatim
    assert secrets_in("client_id: x\nclient_secret: y\n", "f") == {"x": "y"}
    with pytest.raises(InputError, match="expected a bare secret"):
        secrets_in("a\nb\n", "f")


def test_basic_auth_form_encodes_parts():
    header = Credentials("a b", "x:y").basic_auth()
    assert base64.b64decode(header.split()[1]).decode() == "a%20b:x%3Ay"


def test_metadata_urls_follow_rfc8414_for_issuers_with_a_path():
    assert discovery.metadata_urls("http://h:1/") == [
        "http://h:1/.well-known/oauth-authorization-server",
        "http://h:1/.well-known/openid-configuration",
    ]
    assert discovery.metadata_urls("https://h/tenant")[0] == (
        "https://h/.well-known/oauth-authorization-server/tenant"
    )
    parsed = discovery.parse_metadata({"issuer": "i", "token_endpoint": "t"}, "u")
    assert parsed.jwks_uri is None and parsed.metadata_url == "u"
    with pytest.raises(InputError, match="introspection_endpoint"):
        parsed.require("introspection_endpoint")
    with pytest.raises(InputError, match="token_endpoint"):
        discovery.parse_metadata({"issuer": "i"}, "u")


def _jwt(header: dict) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.e30.sig"


def test_token_kind_and_hints():
    assert check.token_kind(_jwt({"alg": "ES256", "typ": "at+jwt"})) == "jwt"
    assert check.token_kind("a.b.c") == "opaque"  # three parts, but no JSON header
    assert check.token_kind("8jT-random-reference") == "opaque"
    hint = check.introspection_hint("jwt", "HTTP 400 unsupported_token_type", "introspection")
    assert "add an opaque client for the introspection role" in hint
    assert check.introspection_hint("opaque", "HTTP 400 unsupported_token_type", "x") == ""
    assert "does not revoke JWT" in check.revocation_hint("jwt", "HTTP 400 unsupported_token_type")


def test_oauth_error_and_skew():
    response = requests.Response()
    response.status_code = 401
    response._content = b'{"error": "invalid_client"}'
    assert check.oauth_error(response) == "HTTP 401 invalid_client"
    assert check.skew_seconds("Wed, 02 Dec 2026 10:00:10 GMT", 1796205600.0, 1796205600.0) == 10
    assert check.skew_seconds("garbage", 0, 0) is None


def test_documents_compared_field_by_field():
    a = {"issuer": "i", "token_endpoint": "http://p/token", "jwks_uri": "http://p/jwks"}
    b = {**a, "jwks_uri": "http://idp/jwks"}
    urls = ("http://p/.well-known/oauth-authorization-server",
            "http://p/.well-known/openid-configuration")  # fmt: skip
    differences = check.compare_documents(dict(zip(urls, (a, b), strict=True)))
    assert differences == [
        "jwks_uri differs (oauth-authorization-server: http://p/jwks; "
        "openid-configuration: http://idp/jwks)"
    ]
    assert check.compare_documents({urls[0]: a}) == []


def test_exit_code_is_the_worst_finding():
    ok, warn = check.Finding("a", check.OK, ""), check.Finding("b", check.WARN, "")
    fail, down = check.Finding("c", check.FAIL, ""), check.Finding("d", check.UNREACHABLE, "")
    assert check.exit_code([ok, warn]) == 0
    assert check.exit_code([ok, fail]) == 1
    assert check.exit_code([fail, down]) == 3


def test_write_target_helper_round_trips(tmp_path):
    path = write_target(
        tmp_path / "t.yaml",
        {"issuer": "http://127.0.0.1:9", "clients": {"prober": {"client_id": "p",
         "secret": {"env": "P"}}}},
    )  # fmt: skip
    assert load_target(path).client("prober").client_id == "p"


def test_a_url_where_a_target_file_belongs_says_so():
    with pytest.raises(InputError, match="takes a target description file .* not a URL"):
        load_target("https://idp.example")


def test_the_target_file_option_defaults_to_none_so_load_target_picks_the_file():
    import argparse

    from tokenslo.target.options import add_target_file

    parser = argparse.ArgumentParser()
    add_target_file(parser)
    assert parser.parse_args([]).target is None
    assert parser.parse_args(["--target", "t.yaml"]).target == "t.yaml"
    assert "$TOKENSLO_TARGET_FILE" in parser.format_help()
