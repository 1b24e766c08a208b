"""Property-based tests of the IdP's form and client-credential parsing (hypothesis).

Every body and every ``Authorization`` header an anonymous caller can send must
end as a parsed form or an RFC 6749 error (``OAuthError``: 400/401), never as
another exception (a 500 with a traceback). Well-formed input must round-trip.
A fixed, derandomised example budget; regression cases are pinned with ``@example``.
"""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote_plus, urlencode

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from tokenslo.lab.idp.app import MAX_FORM_BYTES, _basic_credentials, _form
from tokenslo.lab.idp.tokens import OAuthError

EXAMPLES = 200
BUDGET = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
FORM = "application/x-www-form-urlencoded"

# Text that can be UTF-8 encoded (no lone surrogates), as any HTTP client sends it.
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def form_request(body: bytes, content_type: str = FORM) -> Request:
    """A real Starlette request whose body arrives in one ASGI message."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/token",
        "query_string": b"",
        "headers": [(b"content-type", content_type.encode("latin-1"))],
    }
    return Request(scope, receive)


def test_an_oversized_form_is_refused_unread() -> None:
    with pytest.raises(OAuthError) as error:
        parse(b"a=" + b"x" * MAX_FORM_BYTES)
    assert (error.value.error, error.value.status) == ("invalid_request", 413)


def parse(body: bytes, content_type: str = FORM) -> dict[str, str]:
    return asyncio.run(_form(form_request(body, content_type)))


@BUDGET
@given(st.binary(max_size=400))
@example(b"a=1&a=2")  # repeated parameter (RFC 6749 §3.2)
@example(b"&".join(b"k%d=v" % i for i in range(51)))  # beyond max_num_fields
@example(b"\xff\xfe=\x80")  # not UTF-8
@example(b"%")  # bad percent escape
@example(b"=x")  # empty name
def test_any_body_is_a_form_or_an_oauth_error(body: bytes) -> None:
    try:
        form = parse(body)
    except OAuthError as error:
        assert (error.error, error.status) == ("invalid_request", 400)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in form.items())


@BUDGET
@given(st.dictionaries(texts.filter(bool), texts, max_size=10))
@example({"grant_type": "client_credentials", "scope": "a b"})
@example({"client_id": "x\ny", "client_secret": "&=+%"})
def test_encoded_forms_round_trip(fields: dict[str, str]) -> None:
    assert parse(urlencode(fields).encode("utf-8")) == fields


@BUDGET
@given(st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""]), texts)
def test_other_content_types_are_refused(content_type: str, value: str) -> None:
    with pytest.raises(OAuthError) as error:
        parse(urlencode({"a": value or "x"}).encode("utf-8"), content_type)
    assert error.value.error == "invalid_request"


@BUDGET
@given(client_id=texts, secret=texts)
@example(client_id="id:with:colons", secret="p@ss:word+")
@example(client_id="ünïcode", secret=" spaced ")
def test_basic_credentials_round_trip(client_id: str, secret: str) -> None:
    """RFC 6749 §2.3.1: both parts form-urlencoded, then joined by ':' and base64-encoded."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    header = "Basic " + base64.b64encode(pair).decode("ascii")
    assert _basic_credentials(header) == (client_id, secret)


@BUDGET
@given(st.text(max_size=200))
@example("Basic")
@example("Basic !!!")
@example("Basic " + base64.b64encode(b"\xff:\xfe").decode())
@example("Basic " + base64.b64encode(b"no-colon").decode())
def test_any_authorization_header_is_credentials_or_invalid_client(header: str) -> None:
    try:
        client_id, secret = _basic_credentials(header)
    except OAuthError as error:
        assert (error.error, error.status) == ("invalid_client", 401)
        return
    assert isinstance(client_id, str) and isinstance(secret, str)
