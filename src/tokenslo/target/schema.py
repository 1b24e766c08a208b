"""JSON Schema of ``target.yaml`` (tokenslo/target/v1): the structure; meaning is checked in
:mod:`tokenslo.target.loader`."""

from __future__ import annotations

from tokenslo.spec.schema import strict_object
from tokenslo.target.model import ENDPOINTS, FAULT_KINDS, ROLES, TOKEN_KINDS, VERSION

URL = {"type": "string", "pattern": r"^https?://[^\s/]+(/\S*)?$"}
ENV_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
NONEMPTY = {"type": "string", "minLength": 1}


def _url_block() -> dict:
    return strict_object({"url": URL}, ("url",))


_SECRET = {
    "oneOf": [
        strict_object({"env": ENV_NAME}, ("env",)),
        strict_object({"file": NONEMPTY}, ("file",)),
    ]
}

_CLIENT = strict_object(
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

_FAULT = strict_object(
    {"kind": {"enum": list(FAULT_KINDS)}, "admin_url": URL}, ("kind", "admin_url")
)


def json_schema() -> dict:
    return strict_object(
        {
            "version": {"const": VERSION},
            "name": NONEMPTY,
            "issuer": URL,
            "discovery_url": URL,
            "endpoints": strict_object({name: URL for name in ENDPOINTS}),
            "clients": strict_object({role: _CLIENT for role in ROLES}, minProperties=1),
            "provider": strict_object(
                {"introspects_jwt": {"type": "boolean"}, "revokes_jwt": {"type": "boolean"}}
            ),
            "api": strict_object({"url": URL, "write_url": URL}, ("url",)),
            "faults": strict_object(
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
