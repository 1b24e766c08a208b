"""Client secrets: the one place tokenslo reads them, from an environment variable or a file.

Never from a command line (``ps`` and CI logs show those). A secret file must not be
readable by group or others (mode 0600), and holds either the bare secret, a
``{client_id, client_secret}`` mapping, or a ``clients:`` list of them (the lab's
``credentials.yaml``). Secrets are read when needed and never logged or returned in
reprs.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tokenslo.errors import InputError
from tokenslo.spec.yamlpos import parse_document
from tokenslo.target.model import Client, SecretRef


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str = field(repr=False)

    def basic_auth(self) -> str:
        """RFC 6749 §2.3.1 client_secret_basic header value (form-urlencoded parts)."""
        raw = f"{quote(self.client_id, safe='')}:{quote(self.client_secret, safe='')}"
        return "Basic " + base64.b64encode(raw.encode()).decode("ascii")

    @property
    def auth(self) -> tuple[str, str]:
        """For ``requests``' ``auth=`` (which form-urlencodes nothing: plain ids only)."""
        return (self.client_id, self.client_secret)


def credentials(client: Client, env: Mapping[str, str] | None = None) -> Credentials:
    """The client's id and secret, from where its target entry says."""
    return Credentials(client.client_id, read_secret(client.secret, client.client_id, env))


def read_secret(ref: SecretRef, client_id: str, env: Mapping[str, str] | None = None) -> str:
    if ref.env:
        value = (os.environ if env is None else env).get(ref.env, "")
        if not value:
            raise InputError(
                f"environment variable {ref.env} (the secret of client {client_id!r}) is not set",
                field="secret.env",
            )
        return value
    assert ref.file is not None
    return _from_file(ref.file, client_id)


def _from_file(path: Path, client_id: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read secret file: {exc.strerror}", file=str(path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(
            f"secret file is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 it",
            file=str(path),
        )
    found = secrets_in(text, str(path))
    if client_id in found:
        return found[client_id]
    if "" in found:
        return found[""]
    raise InputError(f"no secret for client {client_id!r}", file=str(path), field="clients")


def secrets_in(text: str, file: str) -> dict[str, str]:
    """client_id → secret from a secret file's text ('' keys a bare secret). Pure.

    A file that names ``client_secret`` is YAML (read by the one safe reader); otherwise
    its single line is the secret itself, taken verbatim (YAML could mangle it)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "client_secret" not in text:
        if len(lines) == 1:
            return {"": lines[0]}
        raise InputError(_SHAPES, file=file)
    data = parse_document(text, file).data
    entries = data.get("clients") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        entries = [data]
    found = {
        str(e["client_id"]): str(e["client_secret"])
        for e in entries
        if isinstance(e, dict) and e.get("client_id") and e.get("client_secret")
    }
    if not found:
        raise InputError(_SHAPES, file=file)
    return found


_SHAPES = (
    "expected a bare secret, {client_id, client_secret} or clients: [{client_id, client_secret}]"
)
