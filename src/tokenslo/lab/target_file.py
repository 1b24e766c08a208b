"""The lab's own target description (``<state dir>/target.yaml``), written by ``lab up``.

This is the only place that maps lab client names and lab URLs onto the roles and
settings of a target; everything else reads the file (tokenslo.target).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tokenslo.target.model import VERSION

TARGET_FILE = "target.yaml"
API_PATH = "/api/resource"
# role → lab client (see credentials.CLIENTS); prober is registered for api.read only, so
# its tokens are the narrow ones the gateway's write route (api.write) refuses.
ROLE_CLIENTS = {
    "load": "loadtest",
    "prober": "prober",
    "introspection": "loadtest",
    "narrow_scope": "prober",
}


def lab_target(
    urls: dict[str, str],
    issuer: str,
    state_dir: Path,
    credentials_file: Path,
    admin_secret_file: Path,
    slo_paths: list[str],
) -> dict[str, Any]:
    """The description of a running lab (pure)."""
    target: dict[str, Any] = {
        "version": VERSION,
        "name": "lab",
        "issuer": issuer,
        "clients": {
            role: {
                "client_id": client_id,
                "secret": {"file": str(credentials_file)},
                "token_kind": "jwt",
                "grants": ["client_credentials", "refresh_token"],
            }
            for role, client_id in ROLE_CLIENTS.items()
        },
        "provider": {"introspects_jwt": True, "revokes_jwt": True},
        "faults": {
            "admin_secret_file": str(admin_secret_file),
            **{c: {"kind": "lab", "admin_url": urls[c]} for c in ("idp", "gateway") if c in urls},
        },
        "slo_paths": slo_paths,
        "state_dir": str(state_dir),
    }
    if "gateway" in urls:
        api = urls["gateway"].rstrip("/") + API_PATH
        target["api"] = {"url": api, "write_url": api}  # GET reads, POST writes
    for key in ("prometheus", "alertmanager", "webhook"):
        if key in urls:
            target[key] = {"url": urls[key]}
    return target


class _NoAliases(yaml.SafeDumper):
    """Repeat shared values instead of anchoring them: tokenslo's reader refuses anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(target: dict[str, Any]) -> str:
    header = "# Written by `tokenslo lab up`: the lab as a target (format: docs/target.md)\n"
    return header + yaml.dump(target, Dumper=_NoAliases, sort_keys=False)
