"""The target description as frozen data (pure: no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tokenslo.errors import InputError

_Entry = TypeVar("_Entry")

VERSION = "tokenslo/target/v1"
# Clients act on the IdP by role; a scenario or probe asks for a role, never a client name.
# ``narrow_scope``: a client whose tokens lack the scope the API's write route requires
# (the prober's insufficient_scope check).
ROLES = ("load", "prober", "introspection", "narrow_scope")
ENDPOINTS = ("token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint")
TOKEN_KINDS = ("jwt", "opaque")
FAULT_KINDS = ("lab", "proxy")


@dataclass(frozen=True)
class SecretRef:
    """Where a client secret lives: an environment variable, or a file (mode 0600)."""

    env: str | None = None
    file: Path | None = None

    def describe(self) -> str:
        return f"${self.env}" if self.env else f"file {self.file}"


@dataclass(frozen=True)
class Client:
    role: str
    client_id: str
    secret: SecretRef
    token_kind: str | None = None  # jwt | opaque; None: unknown (target check detects it)
    token_params: dict[str, str] = field(default_factory=dict)  # e.g. RFC 8707 resource, scope
    grants: tuple[str, ...] = ("client_credentials",)


@dataclass(frozen=True)
class Provider:
    """What the IdP allows; None means unknown (assumed allowed, target check tells)."""

    introspects_jwt: bool | None = None
    revokes_jwt: bool | None = None


@dataclass(frozen=True)
class FaultInjector:
    """Where faults for one component go: the lab's admin API or a ``tokenslo proxy``."""

    component: str  # idp | gateway
    kind: str  # lab | proxy
    admin_url: str


@dataclass(frozen=True)
class Target:
    name: str
    issuer: str
    discovery_url: str  # where clients discover the endpoints (a proxy in front, or the issuer)
    clients: dict[str, Client]
    state_dir: Path  # run records (chaos runs, load logs) of this target
    source: str = "<target>"
    endpoints: dict[str, str] = field(default_factory=dict)  # overrides of discovered values
    provider: Provider = Provider()
    api_url: str | None = None
    api_write_url: str | None = None  # a route the narrow_scope client's tokens may not POST to
    faults: dict[str, FaultInjector] = field(default_factory=dict)
    admin_secret_file: Path | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    webhook_url: str | None = None  # a tokenslo webhook receiver ("alert delivered" evidence)
    slo_paths: tuple[str, ...] = ("slo/",)

    @property
    def is_lab(self) -> bool:
        return any(f.kind == "lab" for f in self.faults.values())

    def client(self, role: str) -> Client:
        """The client acting in ``role``; bad input naming the role when none is declared."""
        return self._declared(self.clients, "clients", role, f"no client for role {role!r}")

    def fault_admin(self, component: str) -> FaultInjector:
        return self._declared(
            self.faults, "faults", component, f"no fault injection for {component!r}"
        )

    def _declared(
        self, table: Mapping[str, _Entry], section: str, key: str, missing: str
    ) -> _Entry:
        """``table[key]``, else bad input at ``section.key`` listing what the file declares."""
        try:
            return table[key]
        except KeyError:
            known = ", ".join(sorted(table)) or "none"
            raise InputError(
                f"{missing} (declared: {known})", file=self.source, field=f"{section}.{key}"
            ) from None

    def require(self, attribute: str, what: str) -> str:
        """A URL setting the caller cannot do without (e.g. ``prometheus_url``)."""
        value = getattr(self, attribute)
        if not value:
            key = attribute.removesuffix("_url")
            raise InputError(f"{what} needs {key}.url", file=self.source, field=key)
        return value
