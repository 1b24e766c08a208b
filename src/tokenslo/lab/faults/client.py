"""``LabAdmin``: a small client for a lab service's admin API (faults, clock, key rotation,
token profiles).

Used by tests, the chaos actions and the game day. Connection problems raise
``UnavailableError`` (exit 3); a rejected request (bad fault) raises
``InputError`` (exit 2) carrying the server's one-line reason. The admin secret
is sent only in its header and never appears in messages.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from tokenslo.errors import InputError, UnavailableError
from tokenslo.lab.faults.admin import ADMIN_HEADER


class LabAdmin:
    def __init__(self, base_url: str, secret: str, timeout: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LabAdmin({self.base_url!r})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        try:
            response = requests.request(
                method, url, json=body, headers={ADMIN_HEADER: self._secret}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise UnavailableError(f"{method} {url}: {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 401:
            raise UnavailableError(f"{method} {url}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise InputError(f"{method} {url}: {_reason(response)}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def add_fault(
        self,
        effect: str,
        expires_in: float,
        path_prefix: str | None = None,
        *,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
        delay_seconds: float | None = None,
        probability: float = 1.0,
    ) -> dict[str, Any]:
        """Add a fault; returns it with its ``id`` and ``expires_at``.

        ``path`` faults exactly that request path; ``path_prefix`` every path under it.
        Give at most one; with neither the fault applies to every path (prefix ``/``).
        """
        if path is not None and path_prefix is not None:
            raise InputError("give path (exact) or path_prefix, not both", field="path")
        body: dict[str, Any] = {
            "effect": effect,
            "expires_in": expires_in,
            "method": method,
            "probability": probability,
        }
        if path is not None:
            body["path"] = path
        else:
            body["path_prefix"] = "/" if path_prefix is None else path_prefix
        if status is not None:
            body["status"] = status
        if delay_seconds is not None:
            body["delay_seconds"] = delay_seconds
        return self._call("POST", "/admin/faults", body)

    def list_faults(self) -> dict[str, Any]:
        """``{"faults": [...], "clock": {...} | None}``."""
        return self._call("GET", "/admin/faults")

    def remove_fault(self, fault_id: str) -> None:
        self._call("DELETE", f"/admin/faults/{fault_id}")

    def clear_faults(self) -> int:
        """Remove every fault and the clock offset; returns how many were active."""
        return int(self._call("DELETE", "/admin/faults")["cleared"])

    def set_clock(self, offset_seconds: float, expires_in: float) -> dict[str, Any]:
        body = {"offset_seconds": offset_seconds, "expires_in": expires_in}
        return self._call("POST", "/admin/clock", body)

    def clear_clock(self) -> bool:
        return bool(self._call("DELETE", "/admin/clock")["cleared"])

    def rotate_keys(self, publish: bool = True, expires_in: float | None = None) -> dict[str, Any]:
        """IdP only: new signing key; ``publish=False`` keeps it out of the JWKS (failure F3)
        and needs ``expires_in`` (seconds): the IdP publishes the key itself then."""
        body: dict[str, Any] = {"publish": publish}
        if expires_in is not None:
            body["expires_in"] = expires_in
        return self._call("POST", "/admin/keys/rotate", body)

    def list_keys(self) -> dict[str, Any]:
        """IdP only: ``{"current_kid": ..., "keys": [{kid, published, publish_at, ...}]}``."""
        return self._call("GET", "/admin/keys")

    def publish_key(self) -> dict[str, Any]:
        """IdP only: add the current (unpublished) signing key to the JWKS (end of F3)."""
        return self._call("POST", "/admin/keys/publish", {})

    def set_token_profile(
        self,
        client_id: str,
        expires_in: float,
        *,
        audience: str | None = None,
        scope: str | None = None,
        extra_claims_bytes: int = 0,
    ) -> dict[str, Any]:
        """IdP only: issue bad tokens for ``client_id`` (``*``: every client) until
        ``expires_in`` seconds: another ``audience``, this ``scope`` instead of the
        requested one, or a bloat claim of ``extra_claims_bytes``."""
        body: dict[str, Any] = {"client_id": client_id, "expires_in": expires_in}
        if audience is not None:
            body["audience"] = audience
        if scope is not None:
            body["scope"] = scope
        if extra_claims_bytes:
            body["extra_claims_bytes"] = extra_claims_bytes
        return self._call("POST", "/admin/token-profiles", body)

    def list_token_profiles(self) -> list[dict[str, Any]]:
        """IdP only: the active token profiles."""
        return list(self._call("GET", "/admin/token-profiles")["profiles"])

    def clear_token_profile(self, client_id: str | None = None) -> int:
        """IdP only: end one client's token profile (``None``: all); how many ended."""
        path = "/admin/token-profiles" + (f"/{quote(client_id, safe='')}" if client_id else "")
        return int(self._call("DELETE", path)["cleared"])


def _reason(response: requests.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error_description") or body.get("error") or body)
    except ValueError:
        return f"HTTP {response.status_code}"
