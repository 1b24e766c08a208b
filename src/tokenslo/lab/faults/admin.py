"""Admin HTTP API of the fault engine (``/admin/faults``, ``/admin/clock``).

Every route requires the shared admin secret in ``X-Tokenslo-Admin-Secret``,
compared in constant time. ``check_admin`` is exported so services protect
their own admin routes (e.g. key rotation) the same way.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tokenslo.lab.faults.engine import FaultEngine, FaultError

ADMIN_HEADER = "X-Tokenslo-Admin-Secret"
# A fault or clock request is a few hundred bytes; anything near this is not one.
MAX_BODY_BYTES = 16 * 1024


def check_admin(request: Request, admin_secret: str) -> Response | None:
    """``None`` when the request carries the admin secret, else the 401 response to return."""
    given = request.headers.get(ADMIN_HEADER, "")
    if admin_secret and hmac.compare_digest(given.encode(), admin_secret.encode()):
        return None
    return JSONResponse(
        {"error": "unauthorized", "error_description": f"missing or wrong {ADMIN_HEADER} header"},
        status_code=401,
    )


async def read_json(
    request: Request, max_bytes: int = MAX_BODY_BYTES
) -> tuple[Any, Response | None]:
    """The JSON body, or a 4xx response saying why it is not usable JSON.

    The body is read at most ``max_bytes`` far (413 beyond, whatever Content-Length
    claims), and nesting too deep for the parser is a 400, not a RecursionError.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return None, _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            return None, _too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return (json.loads(raw) if raw else {}), None
    except RecursionError:
        return None, _bad_request("body: JSON nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        return None, _bad_request(f"body: not valid JSON ({str(exc)[:200]})")


def _too_large(max_bytes: int) -> JSONResponse:
    return _bad_request(f"body: larger than {max_bytes} bytes", status=413)


def _bad_request(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_request", "error_description": message}, status_code=status
    )


def admin_routes(engine: FaultEngine, admin_secret: str) -> list[Route]:
    """Routes to add to the service's Starlette app."""

    async def faults(request: Request) -> Response:
        if (denied := check_admin(request, admin_secret)) is not None:
            return denied
        if request.method == "GET":
            return JSONResponse(engine.snapshot())
        if request.method == "DELETE":
            return JSONResponse({"cleared": engine.clear()})
        body, error = await read_json(request)
        if error is not None:
            return error
        try:
            fault = engine.add_fault(body)
        except FaultError as exc:
            return _bad_request(str(exc), exc.http_status)
        return JSONResponse(fault.to_dict(), status_code=201)

    async def one_fault(request: Request) -> Response:
        if (denied := check_admin(request, admin_secret)) is not None:
            return denied
        fault_id = request.path_params["fault_id"]
        if not engine.remove_fault(fault_id):
            return JSONResponse(
                {"error": "not_found", "error_description": f"no active fault {fault_id!r}"},
                status_code=404,
            )
        return Response(status_code=204)

    async def clock(request: Request) -> Response:
        if (denied := check_admin(request, admin_secret)) is not None:
            return denied
        if request.method == "GET":
            state = engine.clock_state()
            return JSONResponse({"clock": state.to_dict() if state else None, "now": engine.now()})
        if request.method == "DELETE":
            return JSONResponse({"cleared": engine.clear_clock()})
        body, error = await read_json(request)
        if error is not None:
            return error
        try:
            offset = engine.set_clock(body)
        except FaultError as exc:
            return _bad_request(str(exc), exc.http_status)
        return JSONResponse(offset.to_dict(), status_code=201)

    return [
        Route("/admin/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/admin/faults/{fault_id}", one_fault, methods=["DELETE"]),
        Route("/admin/clock", clock, methods=["GET", "POST", "DELETE"]),
    ]
