"""Locust users that behave like real clients of token infrastructure.

Every request carries a stable name that SLO files refer to (``loadtest.requests``):
``token:client_credentials``, ``token:refresh_token``, ``introspect``, ``revoke``,
``jwks``, ``api:resource`` and ``discovery``.

A request counts as failed when the client could not use the answer: a
transport error, any non-2xx status, or a body that is not what the RFC
promises (no ``access_token``, no ``keys``, no boolean ``active``). The clients
here only send correct requests, so any such answer is the infrastructure's
fault. Users never wait between tasks (``constant(0)``): a load test measures
what the target does at a given concurrency — unless ``TOKENSLO_PACING`` asks for
a paced, steady load (``tokenslo loadtest run --rate/--wait``, see ``pacing``).

Each scenario is one user class; ``SCENARIOS`` maps scenario names to them.
The target is resolved once per Locust process when a test starts (RFC 8414
discovery from ``--host``, default: the running lab), see ``install``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from locust import FastHttpUser, events

from tokenslo.errors import TokensloError
from tokenslo.load import earlystop, pacing, preflight, recorder
from tokenslo.load.protocol import (
    API,
    CC,
    DISCOVERY,
    FORM,
    INTROSPECT,
    JWKS,
    REFRESH,
    REVOKE,
    SCENARIO_NAMES,
    TokenSet,
    judge,
    parse_json,
)
from tokenslo.load.recorder import ENV_OUT
from tokenslo.load.target import LoadTarget, resolve_target
from tokenslo.target import discovery
from tokenslo.target.loader import ENV_TARGET_FILE

log = logging.getLogger("tokenslo.load")
NO_REFRESH_TOKEN = "the IdP's client_credentials grants carry no refresh_token"

# -- per-process runtime: resolved once when a test starts -------------------------------------


@dataclass(frozen=True)
class Runtime:
    target: LoadTarget
    endpoints: discovery.Endpoints

    @property
    def metadata_url(self) -> str:
        """The metadata document discovery succeeded with (what the discovery task fetches)."""
        return self.endpoints.metadata_url


_runtime: Runtime | None = None


def start_runtime(target_file: str | None = None) -> Runtime:
    """Resolve target, credentials and endpoints for this process (Locust's ``test_start``)."""
    global _runtime
    target = resolve_target(target_file)
    endpoints = discovery.discover(target.target)
    _runtime = Runtime(target, endpoints)
    log.info("target %s: token endpoint %s", target.idp_url, endpoints.token_endpoint)
    return _runtime


def runtime() -> Runtime:
    return _runtime if _runtime is not None else start_runtime(None)


# -- Locust hooks: options (also in the web UI), default host, recorder, runtime ----------------


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser  # Locust's include_in_web_ui only works on the parser itself, not a group
    group.add_argument(
        "--target-file",
        env_var=ENV_TARGET_FILE,
        default=None,
        help="target description (docs/target.md; default: the running lab's)",
    )
    group.add_argument(
        "--tokenslo-out",
        env_var=ENV_OUT,
        default=None,
        include_in_web_ui=False,
        help="write exact per-request results (JSON) here at exit",
    )


def _option(environment: Any, name: str) -> Any:
    return getattr(environment.parsed_options, name, None) if environment.parsed_options else None


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    if not environment.host:
        with contextlib.suppress(TokensloError):
            environment.host = resolve_target(_option(environment, "target_file")).idp_url
    recorder.install(environment, _option(environment, "tokenslo_out"))
    earlystop.install(environment)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    from locust.runners import MasterRunner

    if isinstance(environment.runner, MasterRunner):
        return  # the master runs no users
    rt = start_runtime(_option(environment, "target_file"))
    for scenario in _scenarios(environment):
        roles = frozenset(rt.target.target.clients)
        reason = preflight.problem(scenario, rt.endpoints, rt.target.api_url, roles)
        if reason is not None:  # plain `locust -f`: refuse before the users start
            earlystop.stop_run(environment, reason)
            return


def _scenarios(environment: Any) -> list[str]:
    """The scenario names of the user classes this run uses."""
    classes = set(getattr(environment, "user_classes", None) or ())
    return [name for name, cls in SCENARIOS.items() if cls in classes]


# -- users ------------------------------------------------------------------------------------


def _form_headers(authorization: str) -> dict[str, str]:
    return {"Authorization": authorization, "Content-Type": FORM, "Accept": "application/json"}


class TokenClient(FastHttpUser):
    """A confidential OAuth client (client_secret_basic) with every task a scenario may weight."""

    abstract = True
    wait_time = pacing.wait_time(pacing.from_env(os.environ))
    connection_timeout = 5.0
    network_timeout = 10.0

    def on_start(self) -> None:
        self.rt = runtime()
        target = self.rt.target
        self.form_headers = _form_headers(target.credentials.basic_auth())
        self.token_params = dict(target.client.token_params)
        self.tokens: TokenSet | None = None
        self.api_writes = False  # fresh-api: whether the last API call was a write
        # The introspection client introspects its own tokens: a provider may refuse to
        # introspect (or revoke) the load client's JWTs (docs/target.md, provider).
        self.introspector = target.introspector
        self.introspector_headers = (
            _form_headers(self.introspector.basic_auth()) if self.introspector else None
        )
        self.introspector_params = (
            dict(target.introspection_client.token_params) if target.introspection_client else {}
        )
        self.introspector_tokens: TokenSet | None = None

    # -- building blocks --

    def _post_form(
        self,
        url: str,
        form: dict[str, str],
        name: str,
        required: str | None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """POST a form with client auth: the JSON body, or None after recording a failure."""
        with self.client.post(
            url,
            data=urlencode(form),
            headers=headers or self.form_headers,
            name=name,
            catch_response=True,
        ) as resp:
            body = parse_json(resp.text) if required else None
            problem = judge(resp.status_code, body, required)
            if problem:
                resp.failure(problem)
                return None
            resp.success()
            return body if required else {}

    def _get_json(self, url: str, name: str, required: str, headers: dict | None = None) -> Any:
        with self.client.get(url, headers=headers, name=name, catch_response=True) as resp:
            body = parse_json(resp.text)
            problem = judge(resp.status_code, body, required)
            if problem:
                resp.failure(problem)
                return None
            resp.success()
            return body

    def issue(self) -> TokenSet | None:
        """client_credentials grant; the new tokens become this client's current ones."""
        body = self._post_form(
            self.rt.endpoints.token_endpoint,
            {"grant_type": "client_credentials", **self.token_params},
            CC,
            "access_token",
        )
        if body is not None:
            self.tokens = TokenSet.from_response(body, time.monotonic())
        return self.tokens if body is not None else None

    def introspector_token(self) -> str | None:
        """The introspection client's own current token (renewed shortly before expiry)."""
        if self.introspector_tokens is None or not self.introspector_tokens.fresh(time.monotonic()):
            body = self._post_form(
                self.rt.endpoints.token_endpoint,
                {"grant_type": "client_credentials", **self.introspector_params},
                CC,
                "access_token",
                headers=self.introspector_headers,
            )
            if body is None:
                return None
            self.introspector_tokens = TokenSet.from_response(body, time.monotonic())
        return self.introspector_tokens.access_token

    def access_token(self) -> str | None:
        """The current access token, renewed shortly before it expires (not on every call)."""
        if self.tokens is None or not self.tokens.fresh(time.monotonic()):
            self.issue()
        return self.tokens.access_token if self.tokens else None

    # -- tasks (weighted per scenario) --

    def client_credentials(self) -> None:
        self.issue()

    def refresh(self) -> None:
        """refresh_token grant with rotation: the new refresh token replaces the old one."""
        if (self.tokens is None or not self.tokens.refresh_token) and self.issue() is None:
            return
        if self.tokens is None or not self.tokens.refresh_token:
            self.environment.tokenslo_recorder.note_unsent(REFRESH, NO_REFRESH_TOKEN)
            return
        body = self._post_form(
            self.rt.endpoints.token_endpoint,
            {"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token},
            REFRESH,
            "access_token",
        )
        if body is None:
            self.tokens = None  # a spent or revoked family: start a new one next time
            return
        rotated = TokenSet.from_response(body, time.monotonic())
        rotated.refresh_token = rotated.refresh_token or self.tokens.refresh_token
        self.tokens = rotated

    def introspect(self) -> None:
        """RFC 7662 introspection, by the target's introspection client, of its own token."""
        if self.introspector_headers is None:
            return
        token = self.introspector_token()
        if token is None:
            return
        url = self.rt.endpoints.require("introspection_endpoint")
        form = {"token": token, "token_type_hint": "access_token"}
        self._post_form(url, form, INTROSPECT, "active", headers=self.introspector_headers)

    def revoke(self) -> None:
        """RFC 7009 logout: get a fresh grant, then revoke its refresh token (or access token)."""
        url = self.rt.endpoints.require("revocation_endpoint")
        headers, params = self._revoker()
        body = self._post_form(
            self.rt.endpoints.token_endpoint,
            {"grant_type": "client_credentials", **params},
            CC,
            "access_token",
            headers=headers,
        )
        if body is None:
            return
        refresh = body.get("refresh_token")
        form = (
            {"token": refresh, "token_type_hint": "refresh_token"}
            if isinstance(refresh, str)
            else {"token": body["access_token"], "token_type_hint": "access_token"}
        )
        self._post_form(url, form, REVOKE, None, headers=headers)

    def _revoker(self) -> tuple[dict[str, str], dict[str, str]]:
        """Who revokes: the load client, or the introspection client (its own, opaque tokens)
        when the target says the provider does not revoke JWT access tokens."""
        if self.rt.target.target.provider.revokes_jwt is False and self.introspector_headers:
            return self.introspector_headers, self.introspector_params
        return self.form_headers, self.token_params

    def fresh_token_call(self) -> None:
        """A client that caches no token: a new grant, then one API call with it, so every
        validation sees the IdP's current signing key and clock (key faults hit them all).
        Against the lab the calls alternate its read and write routes (``GET``/``POST``
        ``/api/resource``), so a token lacking either route's scope shows in the scope
        checks; another target's API is only read (its write route is unknown)."""
        if self.issue() is not None:
            self.api_writes = self.rt.target.target.is_lab and not self.api_writes
            self.call_api(write=self.api_writes)

    def jwks(self) -> None:
        self._get_json(self.rt.endpoints.require("jwks_uri"), JWKS, "keys")

    def discovery(self) -> None:
        self._get_json(self.rt.metadata_url, DISCOVERY, "issuer")

    def call_api(self, write: bool = False) -> None:
        """A protected API call through the gateway with the reused bearer token
        (``write``: ``POST``, the route that needs the write scope)."""
        api = self.rt.target.api_url
        token = self.access_token() if api else None
        if api is None or token is None:
            return
        send = self.client.post if write else self.client.get
        with send(
            api, headers={"Authorization": f"Bearer {token}"}, name=API, catch_response=True
        ) as resp:
            problem = judge(resp.status_code, None)
            if problem:
                resp.failure(problem)
                if resp.status_code == 401:
                    self.tokens = None  # rejected: get a new token next time
                return
            resp.success()


# Weights of the mixed profile, chosen so that 20 users for 30 s against the lab give
# every request name gated by slo/ enough requests for the rule of three (docs/loadtest.md).
MIXED_WEIGHTS = {
    TokenClient.call_api: 6,
    TokenClient.introspect: 3,
    TokenClient.refresh: 3,
    TokenClient.jwks: 3,
    TokenClient.revoke: 3,
    TokenClient.discovery: 1,
}


class MixedUser(TokenClient):
    """The mixed profile: API calls, introspection, refresh, JWKS, logout, discovery."""

    # locust takes a {task: weight} dict too; its annotation lists only the list form.
    tasks = MIXED_WEIGHTS  # type: ignore[assignment]


class IssuanceUser(TokenClient):
    tasks = [TokenClient.client_credentials]


class RefreshUser(TokenClient):
    tasks = [TokenClient.refresh]


class IntrospectionUser(TokenClient):
    tasks = [TokenClient.introspect]


class RevocationUser(TokenClient):
    tasks = [TokenClient.revoke]


class JwksUser(TokenClient):
    tasks = [TokenClient.jwks]


class ApiUser(TokenClient):
    tasks = [TokenClient.call_api]


class FreshApiUser(TokenClient):
    tasks = [TokenClient.fresh_token_call]


SCENARIOS: dict[str, type[TokenClient]] = {  # keys: protocol.SCENARIO_NAMES
    "mixed": MixedUser,
    "issuance": IssuanceUser,
    "refresh": RefreshUser,
    "introspection": IntrospectionUser,
    "revocation": RevocationUser,
    "jwks": JwksUser,
    "api": ApiUser,
    "fresh-api": FreshApiUser,
}
assert tuple(SCENARIOS) == SCENARIO_NAMES
