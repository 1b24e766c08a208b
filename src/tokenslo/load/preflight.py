"""Before any load: does the target have what the scenario needs? After: what did it send?

The needs live in one table, ``protocol.NEEDS`` (pure data). ``check`` refuses a
scenario whose endpoints the discovered metadata lacks — one line, exit 3, before
Locust starts — instead of a traceback per task for the whole duration. ``scope`` says
which request names a run could send, so the gate judges only the SLOs that name one.
"""

from __future__ import annotations

from tokenslo.errors import InputError, UnavailableError
from tokenslo.load.discovery import Endpoints
from tokenslo.load.gate import Scope
from tokenslo.load.protocol import API, NEEDS
from tokenslo.load.recorder import Recorder


def missing_endpoints(scenario: str, endpoints: Endpoints) -> list[str]:
    """Metadata fields the scenario needs that the target does not advertise (pure)."""
    return [name for name in NEEDS[scenario].endpoints if endpoints.get(name) is None]


def problem(scenario: str, endpoints: Endpoints, api_url: str | None) -> str | None:
    """Why ``scenario`` cannot run against this target, in one line; None when it can."""
    missing = missing_endpoints(scenario, endpoints)
    if missing:
        where = endpoints.metadata_url or "the IdP's metadata"
        return (
            f"scenario {scenario} needs {' and '.join(missing)}, which {where} does not "
            "advertise; no load was sent"
        )
    if NEEDS[scenario].api == "required" and not api_url:
        return f"scenario {scenario} needs the protected API URL (--api or TOKENSLO_API_URL)"
    return None


def check(scenario: str, endpoints: Endpoints, api_url: str | None) -> None:
    """Refuse before any load: a missing endpoint exits 3, a missing API URL exits 2."""
    reason = problem(scenario, endpoints, api_url)
    if reason is None:
        return
    if missing_endpoints(scenario, endpoints):
        raise UnavailableError(reason)
    raise InputError(reason, field="--api")


def scope(scenario: str, api_url: str | None, recorder: Recorder) -> Scope:
    """Names the run could send: the scenario's, less the API without a URL, less names the
    target made moot (``Recorder.unsent``, e.g. no refresh tokens) that were never sent."""
    needs = NEEDS[scenario]
    unsent: dict[str, str] = {}
    if needs.api == "optional" and not api_url:
        unsent[API] = f"scenario {scenario} sends no {API} requests: no API URL was given"
    for name, reason in recorder.unsent.items():
        stats = recorder.names.get(name)
        if stats is None or stats.requests == 0:
            unsent[name] = f"scenario {scenario} sent no {name} requests: {reason}"
    sent = frozenset(name for name in needs.sends if name not in unsent)
    return Scope(scenario=scenario, sent=sent, unsent=unsent)
