"""One synthetic transaction against an OAuth 2.0 authorization server.

discover → token (client_credentials) → api → insufficient_scope → introspect → revoke →
propagation → jwks.
A step that cannot run because an earlier one failed is ``skipped`` (blocked);
a step the target does not offer (no ``--api``, endpoint not advertised) is
``skipped`` (not blocked). Every request has ``config.timeout``; the propagation
wait is bounded by ``config.propagation_timeout`` and a matching poll count, so a
transaction always ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from tokenslo.jws import token_fingerprint
from tokenslo.prober.config import ProbeConfig
from tokenslo.prober.measure import (
    bearer_error,
    date_header_seconds,
    discovery_urls,
    jwt_parts,
    numeric,
    same_issuer,
    skew_from_whole_seconds,
    token_ttl,
)
from tokenslo.prober.result import StepResult, TransactionResult
from tokenslo.target.credentials import Credentials

log = logging.getLogger("tokenslo.prober")

USER_AGENT = "tokenslo-prober"
BASIC, POST = "client_secret_basic", "client_secret_post"


class StepFailed(Exception):
    """A step's check failed; the message is safe to log (no token, no secret)."""


@dataclass
class Issued:
    access_token: str
    claims: dict | None  # unverified JWT payload, None for opaque tokens
    header: dict | None
    issued_mid: float  # local time in the middle of the token request


class Transaction:
    """Runs the steps once with a shared HTTP session; ``run()`` never raises for the target."""

    def __init__(self, config: ProbeConfig, session: requests.Session | None = None):
        self.config = config
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.result = TransactionResult(target=config.label, started_at=time.time())
        self.metadata: dict[str, Any] = {}
        self.issued: Issued | None = None
        self._revoked_at = 0.0  # perf_counter when the revocation was acknowledged
        self._not_offered: dict[str, str] = {}  # step → why it is skipped, when not the target

    # -- driver ----------------------------------------------------------------------

    def run(self) -> TransactionResult:
        start = time.perf_counter()
        discovered = self._step("discover", self.discover)
        self._step("token", self.issue, blocked=not discovered)
        have_token = self.issued is not None
        self._step(
            "api", self.call_api, blocked=not have_token, offered=self.config.api is not None
        )
        self._step(
            "insufficient_scope",
            self.check_insufficient_scope,
            blocked=not discovered,
            offered=self._scope_check_configured(),
        )
        self._step(
            "introspect",
            self.introspect,
            blocked=not have_token,
            offered=self._offers("introspection_endpoint") or not discovered,
        )
        self._step(
            "revoke",
            self.revoke,
            blocked=not have_token,
            offered=self._offers("revocation_endpoint") or not discovered,
        )
        revoke = self.result.steps["revoke"]
        can_observe = self._offers("introspection_endpoint") or self.config.api is not None
        self._step(
            "propagation",
            self.propagation,
            blocked=revoke.result == "failure" or revoke.blocked,
            offered=revoke.ok and can_observe,
        )
        self._step(
            "jwks",
            self.fetch_jwks,
            blocked=not discovered,
            offered=self._offers("jwks_uri") or not discovered,
        )
        ok = self.result.ok
        self.result.add(
            StepResult(
                "transaction",
                "success" if ok else "failure",
                time.perf_counter() - start,
                "" if ok else "failed: " + ", ".join(self._failed()),
            )
        )
        self.result.finished_at = time.time()
        return self.result

    def _failed(self) -> list[str]:
        return [s.step for s in self.result.steps.values() if s.result == "failure"]

    def _offers(self, key: str) -> bool:
        return isinstance(self.metadata.get(key), str)

    def _step(
        self, name: str, fn: Callable[[], None], *, blocked: bool = False, offered: bool = True
    ) -> bool:
        if blocked:
            self.result.add(
                StepResult(name, "skipped", detail="an earlier step failed", blocked=True)
            )
            return False
        if not offered:
            detail = self._not_offered.get(name, "not offered by the target")
            self.result.add(StepResult(name, "skipped", detail=detail))
            return False
        began = time.perf_counter()
        try:
            fn()
        except StepFailed as exc:
            detail = str(exc)
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}"
        except ValueError as exc:  # JSON decoding
            detail = f"bad response: {type(exc).__name__}"
        else:
            self.result.add(StepResult(name, "success", time.perf_counter() - began))
            return True
        elapsed = time.perf_counter() - began
        log.info("probe %s step=%s failed: %s", self.config.label, name, detail)
        self.result.add(StepResult(name, "failure", elapsed, detail))
        return False

    # -- HTTP helpers ----------------------------------------------------------------

    def _auth_method(self, key: str) -> str:
        """client_secret_basic unless the server advertises only client_secret_post."""
        methods = self.metadata.get(key) or self.metadata.get(
            "token_endpoint_auth_methods_supported"
        )
        if isinstance(methods, list) and BASIC not in methods and POST in methods:
            return POST
        return BASIC

    def _post(
        self,
        endpoint_key: str,
        form: dict[str, str],
        auth_key: str,
        creds: Credentials | None = None,
    ) -> requests.Response:
        """POST ``form`` to a metadata endpoint, authenticated as ``creds`` (the prober)."""
        creds = creds or self.config.credentials
        data = dict(form)
        auth = None
        if self._auth_method(auth_key) == POST:
            data.update(client_id=creds.client_id, client_secret=creds.client_secret)
        else:
            auth = requests.auth.HTTPBasicAuth(creds.client_id, creds.client_secret)
        return self.session.post(
            self.metadata[endpoint_key],
            data=data,
            auth=auth,
            timeout=self.config.timeout,
            headers={"Accept": "application/json"},
        )

    def _post_token(self, endpoint: str) -> requests.Response:
        """POST the issued access token to the ``introspection`` or ``revocation`` endpoint:
        RFC 7662 and RFC 7009 take the same form and the same client authentication."""
        assert self.issued is not None
        return self._post(
            f"{endpoint}_endpoint",
            {"token": self.issued.access_token, "token_type_hint": "access_token"},
            f"{endpoint}_endpoint_auth_methods_supported",
        )

    def _bearer_get(self, url: str) -> requests.Response:
        assert self.issued is not None
        headers = {"Authorization": f"Bearer {self.issued.access_token}"}
        return self.session.get(url, headers=headers, timeout=self.config.timeout)

    # -- steps -------------------------------------------------------------------------

    def discover(self) -> None:
        """RFC 8414 metadata, falling back to OpenID Connect discovery."""
        reasons = []
        for url in discovery_urls(self.config.target):
            response = self.session.get(url, timeout=self.config.timeout)
            if response.status_code != 200:
                reasons.append(f"{url.rsplit('/.well-known/', 1)[1]}: HTTP {response.status_code}")
                continue
            metadata = response.json()
            if not isinstance(metadata, dict) or not isinstance(
                metadata.get("token_endpoint"), str
            ):
                raise StepFailed(f"{url}: no token_endpoint in the metadata")
            if not same_issuer(metadata.get("issuer"), self.config.issuer or self.config.target):
                raise StepFailed(
                    f"issuer {metadata.get('issuer')!r} is not the target {self.config.label!r}"
                )
            self.metadata = metadata
            return
        raise StepFailed("no metadata: " + "; ".join(reasons))

    def issue(self) -> None:
        form = {"grant_type": "client_credentials"}
        if self.config.scope:
            form["scope"] = self.config.scope
        if self.config.resource:
            form["resource"] = self.config.resource
        sent = time.time()
        response = self._post("token_endpoint", form, "token_endpoint_auth_methods_supported")
        received = time.time()
        _require_ok(response)
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise StepFailed("no access_token in the token response")
        parts = jwt_parts(token)
        header, claims = parts if parts is not None else (None, None)
        self.issued = Issued(token, claims, header, (sent + received) / 2)
        r = self.result
        r.token_ref = token_fingerprint(token)
        r.token_size = len(token.encode("utf-8"))
        r.token_ttl = token_ttl(body.get("expires_in"), claims)
        date = date_header_seconds(response.headers.get("Date"))
        if date is not None:
            r.skew["date_header"] = skew_from_whole_seconds(date, sent, received)
        iat = numeric(claims.get("iat")) if claims else None
        if iat is not None:
            r.skew["token_iat"] = skew_from_whole_seconds(iat, sent, received)
        log.debug("probe %s token issued token=%s", self.config.label, r.token_ref)

    def call_api(self) -> None:
        assert self.config.api is not None
        response = self._bearer_get(self.config.api)
        if not 200 <= response.status_code < 300:
            raise StepFailed(f"API answered HTTP {response.status_code}")

    def _scope_check_configured(self) -> bool:
        missing = [
            name
            for name, value in (
                ("a client in role narrow_scope", self.config.narrow),
                ("api.write_url", self.config.write_api),
            )
            if value is None
        ]
        if missing:
            needs = " and ".join(missing)
            self._not_offered["insufficient_scope"] = f"not configured (target file needs {needs})"
        return not missing

    def check_insufficient_scope(self) -> None:
        """RFC 6750 §3.1: a valid token without the write route's scope gets 403 with a
        Bearer challenge naming ``insufficient_scope`` (not 2xx, not 401 invalid_token)."""
        assert self.config.narrow is not None and self.config.write_api is not None
        form = {"grant_type": "client_credentials", **self.config.narrow_params}
        response = self._post(
            "token_endpoint", form, "token_endpoint_auth_methods_supported", self.config.narrow
        )
        if response.status_code != 200:
            raise StepFailed(
                f"the narrow_scope client got no token: HTTP {response.status_code}"
                + _oauth_error(response)
            )
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise StepFailed("no access_token for the narrow_scope client")
        answer = self.session.post(
            self.config.write_api,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.config.timeout,
        )
        error = bearer_error(answer.headers.get("WWW-Authenticate"))
        if answer.status_code != 403 or error != "insufficient_scope":
            raise StepFailed(
                f"write route answered HTTP {answer.status_code}"
                + (f" ({error})" if error and error.isprintable() and len(error) < 80 else "")
                + " to a token without its scope; expected 403 insufficient_scope"
            )

    def introspect(self) -> None:
        assert self.issued is not None
        response = self._post_token("introspection")
        _require_ok(response)
        body = response.json()
        if not isinstance(body, dict) or body.get("active") is not True:
            raise StepFailed("a freshly issued token introspects as inactive")
        iat = numeric(body.get("iat"))
        if "token_iat" not in self.result.skew and iat is not None:
            # Opaque token: the IdP's iat from introspection, against when we asked for it.
            self.result.skew["token_iat"] = iat + 0.5 - self.issued.issued_mid

    def revoke(self) -> None:
        response = self._post_token("revocation")
        _require_ok(response)
        self._revoked_at = time.perf_counter()

    def propagation(self) -> None:
        """Poll each stage until it rejects the revoked token, bounded in time and count."""
        stages: dict[str, Callable[[], bool]] = {}
        if self._offers("introspection_endpoint"):
            stages["introspection"] = self._introspection_rejects
        if self.config.api is not None:
            stages["api"] = self._api_rejects
        pending = dict(stages)
        poll = self.config.propagation_poll
        max_rounds = int(self.config.propagation_timeout / poll) + 1
        deadline = self._revoked_at + self.config.propagation_timeout
        for _ in range(max_rounds):
            for stage, rejects in list(pending.items()):
                try:
                    done = rejects()
                except requests.RequestException:
                    done = False  # a flaky check is not a rejection; keep polling
                if done:
                    self.result.propagation[stage] = time.perf_counter() - self._revoked_at
                    self.result.propagation_converged[stage] = True
                    del pending[stage]
            if not pending or time.perf_counter() >= deadline:
                break
            time.sleep(min(poll, max(0.0, deadline - time.perf_counter())))
        waited = time.perf_counter() - self._revoked_at
        for stage in pending:
            self.result.propagation[stage] = waited
            self.result.propagation_converged[stage] = False
        if pending:
            raise StepFailed(
                f"revoked token still accepted by {', '.join(pending)} after {waited:.1f}s"
            )

    def _introspection_rejects(self) -> bool:
        response = self._post_token("introspection")
        if response.status_code != 200:
            return False
        body = response.json()
        return isinstance(body, dict) and body.get("active") is False

    def _api_rejects(self) -> bool:
        assert self.config.api is not None
        return self._bearer_get(self.config.api).status_code in (401, 403)

    def fetch_jwks(self) -> None:
        response = self.session.get(self.metadata["jwks_uri"], timeout=self.config.timeout)
        if response.status_code != 200:
            raise StepFailed(f"HTTP {response.status_code}")
        body = response.json()
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list) or not keys:
            raise StepFailed("JWKS without keys")
        header = self.issued.header if self.issued else None
        if header and isinstance(header.get("kid"), str):
            kids = {k.get("kid") for k in keys if isinstance(k, dict)}
            self.result.kid_published = header["kid"] in kids


def _require_ok(response: requests.Response) -> None:
    """An OAuth endpoint answers 200 on success; anything else fails the step with its error."""
    if response.status_code != 200:
        raise StepFailed(f"HTTP {response.status_code}{_oauth_error(response)}")


def _oauth_error(response: requests.Response) -> str:
    """`` (error)`` from an RFC 6749 error body, for messages; empty if none."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    return (
        f" ({error})" if isinstance(error, str) and error.isprintable() and len(error) < 80 else ""
    )


def run_transaction(
    config: ProbeConfig, session: requests.Session | None = None
) -> TransactionResult:
    """One transaction; the target's failures are in the result, never raised."""
    return Transaction(config, session).run()
