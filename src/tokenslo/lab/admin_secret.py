"""The admin secret of the fault API, read the one way every service and the proxy read it.

It comes from a file (``--admin-secret-file``) or the environment, never from a flag:
flags show up in ``ps``. Kept apart from the fault engine so that reading it imports
nothing heavy (``tokenslo proxy --help`` and the services' argument parsing stay fast).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tokenslo.errors import InputError

ADMIN_SECRET_ENV = "TOKENSLO_ADMIN_SECRET"


def read_admin_secret(path: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The secret from ``path`` (first line) or the environment; InputError when neither."""
    environ = os.environ if environ is None else environ
    if path:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", file=path) from None
        if not secret:
            raise InputError("is empty", file=path, field="admin secret")
        return secret
    secret = environ.get(ADMIN_SECRET_ENV, "").strip()
    if not secret:
        raise InputError(
            f"set {ADMIN_SECRET_ENV} or pass --admin-secret-file (the admin API injects faults)",
            field="admin secret",
        )
    return secret
