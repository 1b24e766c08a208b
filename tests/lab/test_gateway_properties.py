"""Property-based tests of the JWT validator (hypothesis): no input escapes the labels.

Each property runs a fixed, derandomised example budget (the same examples in
CI and locally, no example database), and every failure hypothesis found while
these were written is pinned with ``@example`` as a regression case:

* JSON nested 2,500 deep in the header or payload raised RecursionError (500);
* ``exp: 10**400`` raised OverflowError (500);
* a non-canonical last base64url character decoded to the same signature, so a
  valid token had up to 16 accepted spellings.

(The high-S twin of an ECDSA signature also verifies; that one is accepted on purpose,
as the same token: ``test_gateway_hostile.py``.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import string

from gateway_fixtures import b64, forge, segment
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_gateway_hostile import FORGED_UNKNOWN_KID, nested, validator
from test_gateway_units import AUD, ISS, KEY, NOW, claims

from tokenslo.lab.gateway import validator as v

EXAMPLES = 200
BUDGET = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

VALID = forge({"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}, claims(), KEY, "ES256")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
claim_names = st.sampled_from(["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id"])


class Inactive:
    """Introspection that vouches for nothing (what the IdP says about junk)."""

    async def introspect(self, token: str) -> dict:
        return {"active": False}


def judge(token: str) -> v.Outcome:
    checker = validator(introspector=Inactive(), max_token_lifetime=86_400)
    return asyncio.run(checker.validate(token))


@BUDGET
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.=+/~", max_size=300))
@example(FORGED_UNKNOWN_KID)
@example("a.b.c")
@example("..")
def test_any_string_gets_a_label_and_never_raises(token: str) -> None:
    outcome = judge(token)
    assert outcome.result in v.RESULTS
    assert outcome.result != "valid"


@BUDGET
@given(header=json_values, payload=json_values, signature=st.binary(max_size=80))
@example(header=json.loads(nested(200)), payload={}, signature=b"\0" * 64)
def test_any_json_segments_get_a_label(header, payload, signature: bytes) -> None:
    token = f"{segment(json.dumps(header))}.{segment(json.dumps(payload))}.{b64(signature)}"
    assert judge(token).result in v.RESULTS


@BUDGET
@given(st.dictionaries(claim_names, json_values, max_size=5))
@example({"exp": 10**400})
@example({"iat": -(10**400)})
@example({"exp": 1e308, "iat": -1e308})
def test_validly_signed_tokens_with_any_claims_are_judged_by_the_claims(overrides) -> None:
    token = forge(
        {"alg": "ES256", "typ": "at+jwt", "kid": KEY.kid}, claims(**overrides), KEY, "ES256"
    )
    outcome = judge(token)
    assert outcome.result in v.RESULTS
    if outcome.valid:  # then every RFC 9068 rule held
        got = outcome.claims
        assert got["iss"] == ISS
        assert AUD in (got["aud"] if isinstance(got["aud"], list) else [got["aud"]])
        assert got["exp"] + 60 > NOW and got["exp"] - got["iat"] <= 86_400


@BUDGET
@given(position=st.integers(min_value=0, max_value=len(VALID) - 1), data=st.data())
@example(position=len(VALID) - 1, data=None)
def test_no_other_spelling_of_a_valid_token_is_accepted(position: int, data) -> None:
    alphabet = string.ascii_letters + string.digits + "-_"
    original = VALID[position]
    if original == ".":
        return
    if data is None:  # the regression: same bytes, different unused bits in the last char
        raw = base64.urlsafe_b64decode(VALID.split(".")[2] + "==")
        assert len(raw) % 3 != 0
        replacement = alphabet[alphabet.index(original) ^ 1]
    else:
        replacement = data.draw(st.sampled_from([c for c in alphabet if c != original]))
    mutated = VALID[:position] + replacement + VALID[position + 1 :]
    assert judge(mutated).result != "valid"
