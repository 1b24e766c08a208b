"""The one fault engine (IdP, gateway, later a reverse proxy).

Usage in a service::

    engine = FaultEngine(service="idp", registry=registry, max_expiry=3600.0)
    engine.now()                        # time.time() + active clock offset
    app.add_middleware(FaultMiddleware, engine=engine)   # add BEFORE the metrics middleware
    routes += admin_routes(engine, admin_secret)         # /admin/faults, /admin/clock
    if (denied := check_admin(request, admin_secret)) is not None: return denied

Starlette's ``add_middleware`` puts later additions outside earlier ones, so add
the fault middleware first and the metrics middleware after it: metrics then
count faulted responses with the status the client got (``hang`` → 499,
``drop`` → nothing). ``scope["state"]["tokenslo_fault"]`` names the applied effect.
"""

from tokenslo.lab.faults.admin import ADMIN_HEADER, admin_routes, check_admin, read_json
from tokenslo.lab.faults.client import LabAdmin
from tokenslo.lab.faults.engine import (
    EFFECTS,
    ClockOffset,
    Fault,
    FaultEngine,
    FaultError,
    parse_clock,
    parse_fault,
)
from tokenslo.lab.faults.middleware import (
    HANG_STATUS,
    ConnectionDropped,
    FaultMiddleware,
    call_observed,
)

__all__ = [
    "ADMIN_HEADER",
    "EFFECTS",
    "HANG_STATUS",
    "ClockOffset",
    "ConnectionDropped",
    "Fault",
    "FaultEngine",
    "FaultError",
    "FaultMiddleware",
    "LabAdmin",
    "call_observed",
    "admin_routes",
    "check_admin",
    "parse_clock",
    "parse_fault",
    "read_json",
]
