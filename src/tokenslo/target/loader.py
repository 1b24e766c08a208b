"""Read ``target.yaml``: positional YAML, JSON Schema, then meaning — one line per mistake.

Relative paths in the file (secret files, the admin secret, SLO paths, the state
dir) resolve against the file's own directory, so a target file works from any
current directory. Parsing is pure (text in, :class:`Target` out).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

from tokenslo.errors import InputError
from tokenslo.spec.validation import raise_first_error
from tokenslo.spec.yamlpos import Document, load_documents
from tokenslo.target import schema
from tokenslo.target.model import Client, FaultInjector, Provider, SecretRef, Target

ENV_TARGET_FILE = "TOKENSLO_TARGET_FILE"


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema.json_schema())


def default_target_file(env: dict[str, str] | None = None) -> Path:
    """``$TOKENSLO_TARGET_FILE``, else the file the local lab writes when it starts."""
    from tokenslo.lab import LAB_TARGET_FILE

    value = (os.environ if env is None else env).get(ENV_TARGET_FILE)
    return Path(value) if value else Path(LAB_TARGET_FILE)


def load_target(path: str | Path | None = None) -> Target:
    """The target in ``path`` (default: :func:`default_target_file`); a missing default file
    is bad input that says how to get one."""
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        raise InputError(
            f"--target takes a target description file (docs/target.md), not a URL: {path}",
            field="--target",
        )
    file = Path(path) if path else default_target_file()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "" if path else " (start the lab with `tokenslo lab up`, or pass --target FILE)"
        raise InputError(f"no target file{hint}", file=str(file)) from None
    except OSError as exc:
        raise InputError(f"cannot read target file: {exc.strerror}", file=str(file)) from None
    return parse_target(text, str(file), base=file.resolve().parent)


def parse_target(text: str, file: str, base: Path | None = None) -> Target:
    docs = load_documents(text, file)
    if len(docs) != 1 or not isinstance(docs[0].data, dict):
        raise InputError("a target file is one YAML mapping (see docs/target.md)", file=file)
    doc = docs[0]
    raise_first_error(doc, _validator())
    return _build(doc, doc.data, base or Path.cwd())


def _build(doc: Document, data: dict[str, Any], base: Path) -> Target:
    issuer = data["issuer"].rstrip("/")
    name = data.get("name") or urlsplit(issuer).hostname or "target"
    faults = data.get("faults") or {}
    injectors = {
        component: FaultInjector(component, spec["kind"], spec["admin_url"].rstrip("/"))
        for component, spec in faults.items()
        if component != "admin_secret_file"
    }
    if injectors and "admin_secret_file" not in faults:
        raise doc.error("fault injection needs admin_secret_file", ("faults",), key=True)
    if "gateway" in injectors and injectors["gateway"].kind != "lab":
        raise doc.error("only the lab injects faults into a gateway", ("faults", "gateway", "kind"))
    return Target(
        name=name,
        issuer=issuer,
        discovery_url=(data.get("discovery_url") or issuer).rstrip("/"),
        clients={role: _client(role, spec, base) for role, spec in data["clients"].items()},
        state_dir=_path(base, data.get("state_dir") or f".tokenslo/{_slug(name)}"),
        source=doc.file,
        endpoints=dict(data.get("endpoints") or {}),
        provider=Provider(**(data.get("provider") or {})),
        api_url=_url(data, "api"),
        api_write_url=_url(data, "api", "write_url"),
        faults=injectors,
        admin_secret_file=_path(base, faults["admin_secret_file"]) if injectors else None,
        prometheus_url=_url(data, "prometheus"),
        alertmanager_url=_url(data, "alertmanager"),
        webhook_url=_url(data, "webhook"),
        slo_paths=tuple(str(_path(base, p)) for p in data["slo_paths"])
        if "slo_paths" in data
        else ("slo/",),
    )


def _client(role: str, spec: dict[str, Any], base: Path) -> Client:
    secret = spec["secret"]
    if "env" in secret:
        ref = SecretRef(env=secret["env"])
    else:
        ref = SecretRef(file=_path(base, secret["file"]))
    return Client(
        role=role,
        client_id=spec["client_id"],
        secret=ref,
        token_kind=spec.get("token_kind"),
        token_params=dict(spec.get("token_params") or {}),
        grants=tuple(spec.get("grants") or ("client_credentials",)),
    )


def _url(data: dict[str, Any], key: str, field: str = "url") -> str | None:
    block = data.get(key)
    return block[field].rstrip("/") if block and field in block else None


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name) or "target"
