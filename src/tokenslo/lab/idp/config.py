"""IdP configuration: the YAML file the orchestrator writes, validated into ``IdPConfig``.

Relative paths (``keys_file``, ``clients_file``) resolve against the current working
directory, because the lab keeps its state in ``.tokenslo/lab/`` under the directory
the user runs ``tokenslo lab up`` from, wherever the config file itself lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenslo.errors import InputError
from tokenslo.loopback import is_loopback
from tokenslo.spec.yamlpos import read_document

SIGNING_ALGS = ("ES256", "RS256", "EdDSA")
_FIELDS = (
    "host",
    "port",
    "issuer",
    "signing_alg",
    "keys_file",
    "clients_file",
    "revocations_file",
)


@dataclass(frozen=True)
class IdPConfig:
    host: str = "127.0.0.1"
    port: int = 9400
    issuer: str = ""  # empty → derived from host/port by ``effective_issuer``
    signing_alg: str = "ES256"
    keys_file: Path | None = None  # None → keys live in memory only
    clients_file: Path | None = None
    revocations_file: Path | None = None  # None → revocations are forgotten on restart

    @property
    def effective_issuer(self) -> str:
        return self.issuer or f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class YamlDoc:
    """Parsed YAML plus the line of every mapping key, so errors can name file:line."""

    data: Any
    lines: dict[tuple, int]
    file: str

    def error(self, message: str, path: tuple, field: str | None = None) -> InputError:
        line = self.lines.get(path)
        while line is None and path:
            path = path[:-1]
            line = self.lines.get(path)
        return InputError(message, file=self.file, line=line, field=field)


def load_yaml(path: str | Path) -> YamlDoc:
    """Read a YAML file with tokenslo's one safe reader; every problem is an ``InputError``."""
    doc = read_document(path)
    lines = {p: line for p, (line, _column) in doc.values.items()}
    lines.update({p: line for p, (line, _column) in doc.keys.items()})
    return YamlDoc(data=doc.data, lines=lines, file=doc.file)


def load_idp_config(path: str | Path) -> IdPConfig:
    """Load and validate the IdP config file; bad input raises ``InputError`` (exit 2)."""
    return parse_idp_config(load_yaml(path))


def parse_idp_config(doc: YamlDoc) -> IdPConfig:
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.error("the IdP config must be a YAML mapping", ())
    for key in data:
        if key not in _FIELDS:
            raise doc.error(f"unknown field (expected one of {', '.join(_FIELDS)})", (key,), key)
    host = _string(doc, data, "host", "127.0.0.1")
    _require_loopback(doc, host)
    port = data.get("port", 9400)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise doc.error("must be an integer between 1 and 65535", ("port",), "port")
    alg = _string(doc, data, "signing_alg", "ES256")
    if alg not in SIGNING_ALGS:
        raise doc.error(
            f"unsupported {alg!r} (expected one of {', '.join(SIGNING_ALGS)})",
            ("signing_alg",),
            "signing_alg",
        )
    issuer = _string(doc, data, "issuer", "")
    if issuer and not issuer.startswith(("http://", "https://")):
        raise doc.error("must be an http(s) URL", ("issuer",), "issuer")
    return IdPConfig(
        host=host,
        port=port,
        issuer=issuer.rstrip("/"),
        signing_alg=alg,
        keys_file=_path(doc, data, "keys_file"),
        clients_file=_path(doc, data, "clients_file"),
        revocations_file=_path(doc, data, "revocations_file"),
    )


def _string(doc: YamlDoc, data: dict, key: str, default: str) -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise doc.error("must be a string", (key,), key)
    return value


def _path(doc: YamlDoc, data: dict, key: str) -> Path | None:
    value = _string(doc, data, key, "")
    return Path(value) if value else None


def _require_loopback(doc: YamlDoc, host: str) -> None:
    """The lab never listens beyond this machine (loopback by default)."""
    if not is_loopback(host):
        raise doc.error(f"{host!r} is not a loopback address", ("host",), "host")
