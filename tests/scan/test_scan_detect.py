"""The detection core on crafted text: what it finds, how it judges JWTs, and that no
output ever carries a secret."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from tokenslo.jws import CURVE_ORDERS, token_fingerprint
from tokenslo.scan.detect import Finding, fingerprint, scan_texts
from tokenslo.scan.tokens import jwt_claims, jwt_state

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KEY = OctKey.generate_key(256)
CLIENT_SECRET = "Zq8dN3vR7pLw2XkT9mYb"  # pragma: allowlist secret
OPAQUE = "2YotnFZFEjr1zCsicMWpAAq1"


def _jwt(**claims) -> str:
    return jwt.encode({"alg": "HS256", "typ": "at+jwt"}, {"sub": "ci", **claims}, KEY)


LIVE = _jwt(exp=int((NOW + timedelta(hours=1)).timestamp()))
DEAD = _jwt(exp=int((NOW - timedelta(minutes=5)).timestamp()))


def _scan(name: str, text: str) -> list[Finding]:
    return scan_texts([(name, text)], NOW)


def _leaks(findings: list[Finding], secret: str) -> bool:
    """Whether any 8-character piece of ``secret`` shows in the text or JSON output."""
    out = "\n".join(f.text() for f in findings) + json.dumps([f.as_json() for f in findings])
    return any(secret[i : i + 8] in out for i in range(len(secret) - 7))


def test_a_live_jwt_is_valid_until_its_exp():
    (finding,) = _scan("ci.log", f"step 3\ncurl -s https://api/x?access_token={LIVE}\n")
    assert finding.text() == (
        f"ci.log:2: jwt (valid until 2026-06-01T13:00:00Z) sha256:{fingerprint(LIVE)}"
    )
    assert finding.as_json() == {
        "file": "ci.log",
        "line": 2,
        "kind": "jwt",
        "status": "valid",
        "expires": "2026-06-01T13:00:00Z",
        "fingerprint": fingerprint(LIVE),
    }
    # the whole token is named, signature included, as the lab's logs name it
    assert finding.fingerprint == hashlib.sha256(LIVE.encode()).hexdigest()[:12]
    assert not _leaks([finding], LIVE)


def test_an_expired_jwt_says_so():
    (finding,) = _scan("ci.log", DEAD)
    assert (
        finding.text()
        == f"ci.log:1: jwt (expired at 2026-06-01T11:55:00Z) sha256:{fingerprint(DEAD)}"
    )


def test_a_jwt_without_exp_and_one_with_unreadable_claims():
    no_exp = _jwt()
    # detect-secrets wants a JSON payload; a bearer header's token is judged anyway
    odd = "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJl"
    findings = _scan("out.txt", f"{no_exp}\nAuthorization: Bearer {odd}\n")
    assert [f.text() for f in findings] == [
        f"out.txt:1: jwt (no exp) sha256:{fingerprint(no_exp)}",
        f"out.txt:2: jwt (unreadable) sha256:{fingerprint(odd)}",
    ]


def test_a_token_shaped_value_without_alg_is_no_jwt():
    header = "eyJ0eXAiOiJKV1QifQ"  # {"typ":"JWT"}
    assert _scan("ci.log", f"{header}.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl\n") == []


def test_an_opaque_bearer_header_is_a_bearer_token():
    text = f"> GET /api HTTP/1.1\n> Authorization: Bearer {OPAQUE}\n"
    (finding,) = _scan("ci.log", text)
    assert finding.text() == f"ci.log:2: bearer token sha256:{fingerprint(OPAQUE)}"
    assert not _leaks([finding], OPAQUE)


def test_a_bearer_jwt_is_reported_once_as_a_jwt():
    line = f"curl -H 'Authorization: Bearer {LIVE}' https://api.example/items"
    (finding,) = _scan("ci.log", line)
    assert (finding.kind, finding.fingerprint) == ("jwt", fingerprint(LIVE))
    assert finding.jwt is not None and finding.jwt.status == "valid"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("ci.yaml", f"oauth:\n  client_id: ci-runner\n  client_secret: {CLIENT_SECRET}\n"),
        ("creds.json", f'{{"client_id": "ci-runner", "client_secret": "{CLIENT_SECRET}"}}\n'),
        ("ci.log", f'+ export OAUTH_CLIENT_SECRET="{CLIENT_SECRET}"\n'),
    ],
)
def test_a_client_secret_is_found_by_detect_secrets(name, text):
    (finding,) = _scan(name, text)
    assert (finding.kind, finding.jwt) == ("secret keyword", None)
    assert finding.as_json()["status"] is None
    assert finding.fingerprint == fingerprint(CLIENT_SECRET)
    assert not _leaks([finding], CLIENT_SECRET)


@pytest.mark.parametrize(
    "text",
    [
        "all tests passed\nartifact sha256:" + "ab" * 32 + "\n",
        'curl -H "Authorization: Bearer $TOKEN" https://api\n',
        "Authorization: Bearer ***\n",
        "client_secret: ${{ secrets.CLIENT_SECRET }}\n",
        f"client_secret: {CLIENT_SECRET}  # pragma: allowlist secret\n",
        "",
    ],
    ids=["clean", "shell-variable", "ci-mask", "templated", "allowlisted", "empty"],
)
def test_clean_text_finds_nothing(text):
    assert _scan("ci.yaml", text) == []


def test_findings_are_per_file_and_line_and_never_carry_a_secret():
    texts = [
        ("b.log", f"Authorization: Bearer {OPAQUE}\n{DEAD}\n"),
        ("a.yaml", f"client_secret: {CLIENT_SECRET}\ntoken: {LIVE}\n"),
    ]
    findings = scan_texts(texts, NOW)
    assert [(f.file, f.line, f.kind) for f in findings] == [
        ("b.log", 1, "bearer token"),
        ("b.log", 2, "jwt"),
        ("a.yaml", 1, "secret keyword"),
        ("a.yaml", 2, "jwt"),
    ]
    for secret in (OPAQUE, DEAD, CLIENT_SECRET, LIVE):
        assert not _leaks(findings, secret)


@pytest.mark.parametrize(
    ("claims", "status", "expires"),
    [
        ({"exp": 1780315200}, "expired", "2026-06-01T12:00:00Z"),  # at exp: no longer valid
        ({"exp": 1780315201}, "valid", "2026-06-01T12:00:01Z"),
        ({"exp": 1780315200.5}, "valid", "2026-06-01T12:00:00Z"),
        ({"exp": "1780315201"}, "unreadable", None),
        ({"exp": True}, "unreadable", None),
        ({"exp": 1e300}, "unreadable", None),
        ({}, "no exp", None),
        (None, "unreadable", None),
    ],
)
def test_jwt_state_by_exp(claims, status, expires):
    state = jwt_state(claims, NOW)
    assert (state.status, state.expires) == (status, expires)


def test_jwt_claims_are_read_without_a_key_and_refuse_non_jwts():
    assert jwt_claims(LIVE)["sub"] == "ci"
    for value in ("not.a.jwt", "eyJ0eXAiOiJKV1QifQ.e30.", "é.é.é"):
        with pytest.raises(ValueError):
            jwt_claims(value)


def test_detect_secrets_settings_are_restored_after_a_scan():
    from detect_secrets.settings import get_settings

    before = get_settings().json()
    _scan("ci.log", f"Authorization: Bearer {OPAQUE}\n")
    assert get_settings().json() == before


def test_no_secret_is_ever_sent_anywhere_to_be_verified(monkeypatch):
    """detect-secrets can verify some kinds against their issuers; the scan never does."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("the scan made an HTTP request")

    monkeypatch.setattr("requests.sessions.Session.request", refuse)
    github = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"  # pragma: allowlist secret
    slack = (
        "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
    )  # pragma: allowlist secret
    findings = _scan("ci.log", f"token {github}\nSLACK {slack}\n")
    assert [(f.line, f.kind) for f in findings] == [(1, "github token"), (2, "slack token")]


def test_both_ecdsa_twins_of_a_leaked_token_get_the_gateways_name():
    """A real IdP may sign high-S (the twin (r, n - s) of the low-S signature): the scanner
    names either form as the lab gateway's logs do, by the canonical (low-S) token."""
    key = ECKey.generate_key("P-256")
    low = jwt.encode(
        {"alg": "ES256", "typ": "at+jwt"},
        {"sub": "ci", "exp": int((NOW + timedelta(hours=1)).timestamp())},
        key,
    )
    head, payload, signature = low.split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    s = int.from_bytes(raw[32:], "big")
    n = CURVE_ORDERS["ES256"]
    low_s, high_s = min(s, n - s), max(s, n - s)
    spelled = [raw[:32] + v.to_bytes(32, "big") for v in (low_s, high_s)]
    twins = [
        f"{head}.{payload}." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        for sig in spelled
    ]
    found = _scan("ci.log", f"token={twins[0]}\ntoken={twins[1]}\n")
    assert [(f.line, f.kind) for f in found] == [(1, "jwt"), (2, "jwt")]
    assert {f.fingerprint for f in found} == {token_fingerprint(twins[1])}
    assert found[0].fingerprint == hashlib.sha256(twins[0].encode()).hexdigest()[:12]
