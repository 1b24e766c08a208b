"""JSON Schema of ``target.yaml`` (tokenslo/target/v1): the structure; meaning is checked in
:mod:`tokenslo.target.loader`."""

from __future__ import annotations

from typing import Any

from tokenslo.target.model import ENDPOINTS, FAULT_KINDS, ROLES, TOKEN_KINDS, VERSION

URL = {"type": "string", "pattern": r"^https?://[^\s/]+(/\S*)?$"}
ENV_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
NONEMPTY = {"type": "string", "minLength": 1}


def _object(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
        **extra,
    }


def _url_block() -> dict:
    return _object({"url": URL}, ("url",))


_SECRET = {
    "oneOf": [
        _object({"env": ENV_NAME}, ("env",)),
        _object({"file": NONEMPTY}, ("file",)),
    ]
}

_CLIENT = _object(
    {
        "client_id": NONEMPTY,
        "secret": _SECRET,
        "token_kind": {"enum": list(TOKEN_KINDS)},
        "token_params": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "propertyNames": {"pattern": r"^[a-z_]+$"},
        },
        "grants": {"type": "array", "items": NONEMPTY, "minItems": 1},
    },
    ("client_id", "secret"),
)

_FAULT = _object({"kind": {"enum": list(FAULT_KINDS)}, "admin_url": URL}, ("kind", "admin_url"))


def json_schema() -> dict:
    return _object(
        {
            "version": {"const": VERSION},
            "name": NONEMPTY,
            "issuer": URL,
            "discovery_url": URL,
            "endpoints": _object({name: URL for name in ENDPOINTS}),
            "clients": _object({role: _CLIENT for role in ROLES}, minProperties=1),
            "provider": _object(
                {"introspects_jwt": {"type": "boolean"}, "revokes_jwt": {"type": "boolean"}}
            ),
            "api": _url_block(),
            "faults": _object(
                {
                    "admin_secret_file": NONEMPTY,
                    "idp": _FAULT,
                    "gateway": _FAULT,
                }
            ),
            "prometheus": _url_block(),
            "alertmanager": _url_block(),
            "webhook": _url_block(),
            "slo_paths": {"type": "array", "items": NONEMPTY, "minItems": 1},
            "state_dir": NONEMPTY,
        },
        ("version", "issuer", "clients"),
    )
