"""Where a load test points: the IdP base URL, the protected API and the client credentials.

Explicit settings win; otherwise the running lab (``.tokenslo/lab/state.json``, or
``--state-dir``) supplies all three, so ``tokenslo loadtest run`` works on a fresh
machine after ``tokenslo lab up``. Used both by the CLI (to fail early, with exit 2 or
3) and inside the Locust process (which reads the same settings from its environment).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tokenslo.errors import UnavailableError
from tokenslo.load.credentials import ENV_FILE, Credentials, load_credentials

DEFAULT_STATE_DIR = Path(".tokenslo/lab")
ENV_TARGET = "TOKENSLO_TARGET"
ENV_API = "TOKENSLO_API_URL"
ENV_STATE_DIR = "TOKENSLO_STATE_DIR"
API_PATH = "/api/resource"


@dataclass(frozen=True)
class LabDefaults:
    idp_url: str
    api_url: str | None
    credentials_file: str | None


def lab_defaults(state_dir: str | Path | None = None) -> LabDefaults | None:
    """The lab's URLs and credentials file from its state, or None when no lab was started."""
    from tokenslo.lab.orchestrator import read_state

    state = read_state(Path(state_dir or DEFAULT_STATE_DIR))
    if state is None or "idp" not in state.components:
        return None
    gateway = state.components.get("gateway")
    return LabDefaults(
        idp_url=state.components["idp"].url,
        api_url=gateway.url.rstrip("/") + API_PATH if gateway else None,
        credentials_file=str(state.credentials_file),
    )


@dataclass(frozen=True)
class Target:
    idp_url: str
    api_url: str | None
    credentials: Credentials

    def as_env(self) -> dict[str, str]:
        """Environment for the Locust process: everything it needs, secrets off argv."""
        env = {ENV_TARGET: self.idp_url, **self.credentials.as_env()}
        if self.api_url:
            env[ENV_API] = self.api_url
        return env


def resolve_target(
    target: str | None = None,
    api: str | None = None,
    credentials_file: str | None = None,
    state_dir: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Explicit arguments, then environment, then the lab; no IdP at all → exit 3.

    The lab fills in the API and credentials only when it is also the target
    (no target given, or the target is the lab's IdP URL).
    """
    env = os.environ if env is None else env
    target = target or env.get(ENV_TARGET) or None
    api = api or env.get(ENV_API) or None
    credentials_file = credentials_file or env.get(ENV_FILE) or None
    lab = None
    if target is None or not (api and (credentials_file or _env_credentials(env))):
        lab = lab_defaults(state_dir or env.get(ENV_STATE_DIR))
    if target is None and lab is None:
        where = state_dir or env.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR
        raise UnavailableError(
            f"no --target given and no lab state in {where} (start one: tokenslo lab up)"
        )
    if lab is not None and (target is None or _same_url(target, lab.idp_url)):
        # The lab is the target: it supplies whatever else is missing.
        target, api = lab.idp_url, api or lab.api_url
        credentials_file = credentials_file or lab.credentials_file
    assert target is not None
    creds = load_credentials(credentials_file, env=env)
    return Target(idp_url=target.rstrip("/"), api_url=api, credentials=creds)


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _env_credentials(env: Mapping[str, str]) -> bool:
    return bool(env.get("TOKENSLO_CLIENT_ID") or env.get("TOKENSLO_CLIENT_SECRET"))
