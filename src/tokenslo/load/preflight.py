"""Before any load: does the target have what the scenario needs? After: what did it send?

The needs live in one table, ``protocol.NEEDS`` (pure data). ``check`` refuses a
scenario whose endpoints the discovered metadata lacks — one line, exit 3, before
Locust starts — instead of a traceback per task for the whole duration. ``scope`` says
which request names a run could send, so the gate judges only the SLOs that name one.
"""

from __future__ import annotations

from tokenslo.errors import InputError, UnavailableError
from tokenslo.load.gate import Scope
from tokenslo.load.protocol import API, INTROSPECT, NEEDS
from tokenslo.load.recorder import Recorder
from tokenslo.target.discovery import Endpoints
from tokenslo.target.model import ROLES

ALL_ROLES = frozenset(ROLES)  # callers that do not say: every role is there


def missing_endpoints(scenario: str, endpoints: Endpoints) -> list[str]:
    """Metadata fields the scenario needs that the target does not advertise (pure)."""
    return [name for name in NEEDS[scenario].endpoints if endpoints.get(name) is None]


def problem(
    scenario: str,
    endpoints: Endpoints,
    api_url: str | None,
    roles: frozenset[str] = ALL_ROLES,
) -> str | None:
    """Why ``scenario`` cannot run against this target, in one line; None when it can."""
    return _unavailable(scenario, endpoints, roles) or _bad_input(scenario, api_url)


def _unavailable(scenario: str, endpoints: Endpoints, roles: frozenset[str]) -> str | None:
    """What the target lacks: a client role or an advertised endpoint (exit 3)."""
    lacking = [role for role in NEEDS[scenario].roles if role not in roles]
    if lacking:
        return (
            f"scenario {scenario} needs a client in role {' and '.join(lacking)}, which the "
            "target file does not declare (clients:); no load was sent"
        )
    missing = missing_endpoints(scenario, endpoints)
    if missing:
        where = endpoints.metadata_url or "the IdP's metadata"
        return (
            f"scenario {scenario} needs {' and '.join(missing)}, which {where} does not "
            "advertise; no load was sent"
        )
    return None


def _bad_input(scenario: str, api_url: str | None) -> str | None:
    if NEEDS[scenario].api == "required" and not api_url:
        return f"scenario {scenario} needs the protected API URL (api.url in the target file)"
    return None


def check(
    scenario: str,
    endpoints: Endpoints,
    api_url: str | None,
    roles: frozenset[str] = ALL_ROLES,
) -> None:
    """Refuse before any load: a missing client role or endpoint exits 3, a missing API URL
    exits 2."""
    reason = _unavailable(scenario, endpoints, roles)
    if reason is not None:
        raise UnavailableError(reason)
    reason = _bad_input(scenario, api_url)
    if reason is not None:
        raise InputError(reason, field="api.url")


def scope(
    scenario: str,
    api_url: str | None,
    recorder: Recorder,
    roles: frozenset[str] = ALL_ROLES,
) -> Scope:
    """Names the run could send: the scenario's, less the API without a URL, less
    introspection without an introspection client, less names the target made moot
    (``Recorder.unsent``, e.g. no refresh tokens) that were never sent."""
    needs = NEEDS[scenario]
    unsent: dict[str, str] = {}
    if needs.api == "optional" and not api_url:
        unsent[API] = f"scenario {scenario} sends no {API} requests: no API URL was given"
    if INTROSPECT in needs.sends and "introspection" not in roles:
        unsent[INTROSPECT] = (
            f"scenario {scenario} sends no {INTROSPECT} requests: the target declares no "
            "introspection client"
        )
    for name, reason in recorder.unsent.items():
        stats = recorder.names.get(name)
        if stats is None or stats.requests == 0:
            unsent[name] = f"scenario {scenario} sent no {name} requests: {reason}"
    sent = frozenset(name for name in needs.sends if name not in unsent)
    return Scope(scenario=scenario, sent=sent, unsent=unsent)
