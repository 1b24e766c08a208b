"""Client-side token requests of the chaos extension: issue a token as a target's client,
call the API with it, name it without showing it.

A token lives only in memory; journals and messages name it by
``tokenslo.jws.token_fingerprint`` (the lab's logs use the same name).
"""

from __future__ import annotations

import httpx
import requests

from tokenslo.chaos import targets

HTTP_TIMEOUT = 3.0


def issue_token(resolved: targets.Targets, role: str) -> tuple[str | None, str]:
    """(access token or None, outcome) for a client_credentials request by the target's
    client in ``role`` (with its declared token parameters, e.g. an RFC 8707 resource)."""
    client = resolved.target.client(role)
    creds = resolved.credentials(role)
    try:
        response = requests.post(
            resolved.endpoints().token_endpoint,
            data={"grant_type": "client_credentials", **client.token_params},
            auth=creds.auth,
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as exc:
        return None, type(exc).__name__
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        token = response.json().get("access_token")
    except ValueError:
        return None, "invalid JSON"
    return (token, "issued") if isinstance(token, str) and token else (None, "no access_token")


def api_call_from(
    resolved: targets.Targets,
    token: str,
    user_agent: str | None = None,
    source_address: str | None = None,
) -> int | str:
    """The API's status for one GET with ``token``, sent with ``user_agent`` (None: the
    HTTP client's own) from ``source_address`` (a local address to bind, e.g. 127.0.0.2;
    None: the default), or the name of the error when no answer came."""
    headers = {"Authorization": f"Bearer {token}"}
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    transport = httpx.HTTPTransport(local_address=source_address)
    try:
        with httpx.Client(transport=transport, trust_env=False, timeout=HTTP_TIMEOUT) as http:
            response = http.get(resolved.url("api"), headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return response.status_code
