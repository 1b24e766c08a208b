"""Where a load test points: a target description (``--target FILE``; default: the running
lab's ``target.yaml``), its clients by role and its discovered endpoints.

Used by the CLI (to fail early, with exit 2 or 3) and inside the Locust process, which
gets only the target file's path in its environment and reads the secrets itself, so
no secret ever travels on a command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tokenslo.target.credentials import Credentials, credentials
from tokenslo.target.loader import ENV_TARGET_FILE, default_target_file, load_target
from tokenslo.target.model import Client, Target


@dataclass(frozen=True)
class LoadTarget:
    target: Target
    file: Path
    credentials: Credentials  # the load client's
    client: Client
    introspector: Credentials | None  # the introspection client's (its own tokens)
    introspection_client: Client | None

    @property
    def idp_url(self) -> str:
        """Where clients discover the IdP (its proxy, when it has one)."""
        return self.target.discovery_url

    @property
    def api_url(self) -> str | None:
        return self.target.api_url

    def as_env(self) -> dict[str, str]:
        """Environment for the Locust process: the file's path, never a secret."""
        return {ENV_TARGET_FILE: str(self.file)}


def resolve_target(
    file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> LoadTarget:
    """The target in ``file`` (default ``$TOKENSLO_TARGET_FILE``, else the lab's), with the
    secrets of its load and introspection clients read now (bad input names what's missing)."""
    env = os.environ if env is None else env
    path = Path(file) if file else default_target_file(dict(env))
    target = load_target(path)
    client = target.client("load")
    introspection = target.clients.get("introspection")
    return LoadTarget(
        target=target,
        file=path.resolve(),
        credentials=credentials(client, env),
        client=client,
        introspector=credentials(introspection, env) if introspection else None,
        introspection_client=introspection,
    )
