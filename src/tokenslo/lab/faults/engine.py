"""Fault state: which faults are active, until when, and the clock offset.

Pure and clock-injectable so expiry is unit-testable without sleeping. Every
fault and clock offset carries a mandatory expiry that the engine enforces by
itself (on every lookup and from an optional sweeper thread), so a chaos
experiment that dies mid-run cannot leave a fault behind.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger("tokenslo.lab.faults")

EFFECTS = ("status", "delay", "hang", "drop", "malformed")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ACTIONS = ("add", "remove", "expire", "clear", "clock_set", "clock_clear")
FAULT_FIELDS = (
    "method",
    "path",
    "path_prefix",
    "effect",
    "status",
    "delay_seconds",
    "probability",
    "expires_in",
)
CLOCK_FIELDS = ("offset_seconds", "expires_in")
MAX_DELAY_SECONDS = 300.0
MAX_CLOCK_OFFSET = 10 * 365 * 86400.0
MAX_PATH_LENGTH = 2048
# Beyond this an integer cannot be a sensible number of seconds, a status or a probability;
# refusing it before float() keeps a 400-digit integer from raising OverflowError.
MAX_NUMBER = 1e15
MATCH_KINDS = ("exact", "prefix")


class FaultError(ValueError):
    """A rejected fault or clock request; ``http_status`` is what the admin API answers."""

    def __init__(self, message: str, http_status: int = 400):
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True)
class Fault:
    """One active fault rule.

    ``path`` is the request path it applies to; ``match`` says how: ``exact`` (the
    request path equals ``path``) or ``prefix`` (it starts with ``path``). Exact is
    what an endpoint means: oidc-provider serves ``/token/introspection`` beside
    ``/token``, and a token-endpoint outage must not take introspection down too.
    """

    id: str
    effect: str
    path: str
    expires_at: float
    created_at: float
    method: str | None = None
    status: int | None = None
    delay_seconds: float | None = None
    probability: float = 1.0
    match: str = "exact"

    @property
    def path_prefix(self) -> str | None:
        """The prefix of a ``prefix`` rule, ``None`` for an exact one (the API's field)."""
        return self.path if self.match == "prefix" else None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return path == self.path if self.match == "exact" else path.startswith(self.path)

    def describe(self) -> str:
        """``path=/token`` or ``path_prefix=/token``: the field the rule was given with."""
        return f"{'path' if self.match == 'exact' else 'path_prefix'}={self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "match": self.match,
            "path": self.path if self.match == "exact" else None,
            "path_prefix": self.path_prefix,
            "effect": self.effect,
            "status": self.status,
            "delay_seconds": self.delay_seconds,
            "probability": self.probability,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True)
class ClockOffset:
    offset_seconds: float
    expires_at: float

    def to_dict(self) -> dict[str, float]:
        return {"offset_seconds": self.offset_seconds, "expires_at": self.expires_at}


@dataclass
class _Metrics:
    changes: Counter
    active: Gauge
    rules: Gauge
    labels: dict[str, str] = field(default_factory=dict)


def number_field(body: Mapping[str, Any], key: str, default: Any = None) -> float | None:
    """``body[key]`` as a finite float within ±MAX_NUMBER (None when absent); anything else
    — a bool, a string, a 400-digit integer — is a FaultError naming the key (a 400)."""
    value = body.get(key, default)
    if value is None:
        return None
    # bool is an int in Python; {"expires_in": true} is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{key}: must be a number, got {_short(value)}")
    if isinstance(value, int) and abs(value) > MAX_NUMBER:
        raise FaultError(f"{key}: out of range (an integer of {len(str(abs(value)))} digits)")
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise FaultError(f"{key}: must be a finite number within ±{MAX_NUMBER:g}, got {value!r}")
    return float(value)


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: error messages echo input, never a megabyte of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _check_path(body: Mapping[str, Any]) -> tuple[str, str]:
    """``(path, match)`` from exactly one of ``path`` (exact) and ``path_prefix`` (prefix)."""
    given = [key for key in ("path", "path_prefix") if body.get(key) is not None]
    if len(given) != 1:
        raise FaultError(
            "path: give exactly one of path (exact match, e.g. /token) and path_prefix "
            f"(prefix match), got {' and '.join(given) or 'neither'}"
        )
    key = given[0]
    value = body[key]
    if not isinstance(value, str) or not value.startswith("/"):
        raise FaultError(f"{key}: must be a path starting with '/', got {_short(value)}")
    if len(value) > MAX_PATH_LENGTH:
        raise FaultError(f"{key}: at most {MAX_PATH_LENGTH} characters, got {len(value)}")
    if not value.isprintable() or any(c in value for c in " ?#"):
        raise FaultError(
            f"{key}: a URL path without spaces, control characters, query or fragment, "
            f"got {_short(value)}"
        )
    if value.startswith("/admin"):
        raise FaultError(f"{key}: /admin paths are never faulted (they are how faults are removed)")
    return value, "exact" if key == "path" else "prefix"


def _check_expires_in(body: Mapping[str, Any], max_expiry: float) -> float:
    expires_in = number_field(body, "expires_in")
    if expires_in is None:
        raise FaultError("expires_in: required (seconds until the fault removes itself)")
    if not 0 < expires_in <= max_expiry:
        raise FaultError(
            f"expires_in: must be > 0 and <= {max_expiry:g} seconds, got {expires_in:g}"
        )
    return expires_in


def _check_unknown(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    if not isinstance(body, Mapping):
        raise FaultError("body: must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        name = unknown[0] if unknown[0].isprintable() and len(unknown[0]) <= 60 else None
        raise FaultError(
            f"{name or _short(unknown[0])}: unknown field (allowed: {', '.join(allowed)})"
        )


def parse_fault(body: Mapping[str, Any], *, now: float, max_expiry: float, fault_id: str) -> Fault:
    """Validate an admin request body into a ``Fault``; ``FaultError`` names the field."""
    _check_unknown(body, FAULT_FIELDS)
    effect = body.get("effect")
    if not isinstance(effect, str) or effect not in EFFECTS:
        raise FaultError(f"effect: must be one of {', '.join(EFFECTS)}, got {_short(effect)}")
    method = body.get("method")
    if method is not None:
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise FaultError(
                f"method: must be null or one of {', '.join(METHODS)}, got {_short(method)}"
            )
        method = method.upper()
    path, match = _check_path(body)
    probability = number_field(body, "probability", 1.0)
    if probability is None:  # an explicit null
        raise FaultError("probability: must be > 0 and <= 1, got None")
    if not 0 < probability <= 1:
        raise FaultError(f"probability: must be > 0 and <= 1, got {probability:g}")
    status = number_field(body, "status")
    if effect == "status":
        if status is None or not status.is_integer() or not 400 <= status <= 599:
            got = _short(body.get("status"))
            raise FaultError(f"status: effect 'status' needs an HTTP status 400-599, got {got}")
    elif status is not None:
        raise FaultError(f"status: only valid with effect 'status', not {effect!r}")
    delay = number_field(body, "delay_seconds")
    if effect == "delay":
        if delay is None or not 0 < delay <= MAX_DELAY_SECONDS:
            raise FaultError(
                f"delay_seconds: effect 'delay' needs 0 < delay_seconds <= {MAX_DELAY_SECONDS:g}, "
                f"got {_short(body.get('delay_seconds'))}"
            )
    elif delay is not None:
        raise FaultError(f"delay_seconds: only valid with effect 'delay', not {effect!r}")
    expires_in = _check_expires_in(body, max_expiry)
    return Fault(
        id=fault_id,
        effect=effect,
        path=path,
        match=match,
        method=method,
        status=int(status) if status is not None else None,
        delay_seconds=delay,
        probability=probability,
        created_at=now,
        expires_at=now + expires_in,
    )


def parse_clock(body: Mapping[str, Any], *, now: float, max_expiry: float) -> ClockOffset:
    _check_unknown(body, CLOCK_FIELDS)
    offset = number_field(body, "offset_seconds")
    if offset is None:
        raise FaultError("offset_seconds: required (seconds added to the service's clock)")
    if abs(offset) > MAX_CLOCK_OFFSET:
        raise FaultError(f"offset_seconds: must be within ±{MAX_CLOCK_OFFSET:g}, got {offset:g}")
    return ClockOffset(offset_seconds=offset, expires_at=now + _check_expires_in(body, max_expiry))


class FaultEngine:
    """Active faults and clock offset of one service.

    ``clock`` and ``rng`` are injectable for tests. Thread-safe: admin handlers,
    the request path and the sweeper thread may touch it concurrently.
    """

    def __init__(
        self,
        service: str,
        registry: CollectorRegistry | None = None,
        max_expiry: float = 3600.0,
        *,
        max_faults: int = 32,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ):
        self.service = service
        self.registry = registry if registry is not None else CollectorRegistry()
        self.max_expiry = float(max_expiry)
        self.max_faults = max_faults
        self._clock = clock
        self._rng = rng
        self._lock = threading.RLock()
        self._faults: dict[str, Fault] = {}
        self._clock_offset: ClockOffset | None = None
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()
        self._extra_active: list[Callable[[], int]] = []
        self._extra_clear: list[Callable[[], int]] = []
        self._metrics = self._make_metrics()

    def _make_metrics(self) -> _Metrics:
        changes = Counter(
            "tokenslo_fault_changes_total",
            "Fault engine changes (faults added/removed/expired/cleared, clock set/cleared).",
            ["service", "action"],
            registry=self.registry,
        )
        for action in ACTIONS:
            changes.labels(service=self.service, action=action)
        active = Gauge(
            "tokenslo_faults_active",
            "Active injected faults (a clock offset counts as one).",
            ["service"],
            registry=self.registry,
        )
        # Computed at scrape time, so expiry shows in Prometheus even with no traffic.
        active.labels(service=self.service).set_function(self.active_count)
        rules = Gauge(
            "tokenslo_fault_rules_active",
            "Active request fault rules by how they match the path (exact or prefix).",
            ["service", "match"],
            registry=self.registry,
        )
        for kind in MATCH_KINDS:

            def matching(kind: str = kind) -> float:
                return sum(f.match == kind for f in self.active_faults())

            rules.labels(service=self.service, match=kind).set_function(matching)
        return _Metrics(changes=changes, active=active, rules=rules)

    # -- time -----------------------------------------------------------------

    def real_now(self) -> float:
        return self._clock()

    def now(self) -> float:
        """Service time: the real clock plus the active clock offset (for iat/exp/validation)."""
        with self._lock:
            self._sweep_locked()
            offset = self._clock_offset.offset_seconds if self._clock_offset else 0.0
        return self._clock() + offset

    # -- changes --------------------------------------------------------------

    def add_fault(self, body: Mapping[str, Any]) -> Fault:
        with self._lock:
            self._sweep_locked()
            fault = parse_fault(
                body, now=self._clock(), max_expiry=self.max_expiry, fault_id=secrets.token_hex(6)
            )
            if len(self._faults) >= self.max_faults:
                raise FaultError(
                    f"too many active faults ({self.max_faults}); delete some or wait for expiry",
                    http_status=409,
                )
            self._faults[fault.id] = fault
        self._changed(
            "add",
            f"id={fault.id} effect={fault.effect} method={fault.method or '*'} "
            f"{fault.describe()} probability={fault.probability:g} "
            f"expires_in={fault.expires_at - fault.created_at:g}s",
        )
        return fault

    def remove_fault(self, fault_id: str) -> bool:
        with self._lock:
            self._sweep_locked()
            removed = self._faults.pop(fault_id, None)
        if removed is not None:
            self._changed("remove", f"id={fault_id}")
        return removed is not None

    def clear(self) -> int:
        """Remove every fault, the clock offset and the service's own faults (an
        unpublished key, a token profile: ``add_active_source``'s ``clear``), so that
        ``DELETE /admin/faults`` leaves nothing injected; returns how many were removed."""
        with self._lock:
            self._sweep_locked()
            count = len(self._faults) + (1 if self._clock_offset else 0)
            self._faults.clear()
            self._clock_offset = None
            clears = list(self._extra_clear)
        count += sum(clear() for clear in clears)
        self._changed("clear", f"removed={count}")
        return count

    def set_clock(self, body: Mapping[str, Any]) -> ClockOffset:
        with self._lock:
            offset = parse_clock(body, now=self._clock(), max_expiry=self.max_expiry)
            self._clock_offset = offset
        self._changed(
            "clock_set",
            f"offset_seconds={offset.offset_seconds:g} "
            f"expires_in={offset.expires_at - self._clock():.0f}s",
        )
        return offset

    def clear_clock(self) -> bool:
        with self._lock:
            self._sweep_locked()
            had = self._clock_offset is not None
            self._clock_offset = None
        if had:
            self._changed("clock_clear", "")
        return had

    # -- reads ----------------------------------------------------------------

    def active_faults(self) -> list[Fault]:
        with self._lock:
            self._sweep_locked()
            return list(self._faults.values())

    def clock_state(self) -> ClockOffset | None:
        with self._lock:
            self._sweep_locked()
            return self._clock_offset

    def active_count(self) -> int:
        with self._lock:
            self._sweep_locked()
            count = len(self._faults) + (1 if self._clock_offset else 0)
            sources = list(self._extra_active)
        return count + sum(source() for source in sources)

    # -- service-specific faults (e.g. the IdP's unpublished signing keys) -----

    def add_active_source(
        self, count: Callable[[], int], clear: Callable[[], int] | None = None
    ) -> None:
        """Count a service's own expiring faults in ``tokenslo_faults_active``; ``clear``
        ends them all (returning how many) when every fault is cleared."""
        with self._lock:
            self._extra_active.append(count)
            if clear is not None:
                self._extra_clear.append(clear)

    def record_change(self, action: str, detail: str) -> None:
        """Count and log a change of a service-specific fault (``action`` in ACTIONS)."""
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        self._changed(action, detail)

    def get(self, fault_id: str) -> Fault | None:
        with self._lock:
            self._sweep_locked()
            return self._faults.get(fault_id)

    def snapshot(self) -> dict[str, Any]:
        """The ``GET /admin/faults`` document."""
        with self._lock:
            self._sweep_locked()
            clock = self._clock_offset.to_dict() if self._clock_offset else None
            return {"faults": [f.to_dict() for f in self._faults.values()], "clock": clock}

    def match(self, method: str, path: str) -> Fault | None:
        """The fault to apply to this request, if any (rolls each matching fault's probability)."""
        if path.startswith("/admin"):
            return None
        with self._lock:
            self._sweep_locked()
            candidates = [f for f in self._faults.values() if f.matches(method, path)]
        for fault in candidates:
            if fault.probability >= 1.0 or self._rng() < fault.probability:
                return fault
        return None

    def is_active(self, fault_id: str) -> bool:
        return self.get(fault_id) is not None

    # -- expiry ---------------------------------------------------------------

    def sweep(self) -> int:
        """Drop expired faults/offset now; returns how many expired."""
        with self._lock:
            return self._sweep_locked()

    def _sweep_locked(self) -> int:
        now = self._clock()
        expired = [f for f in self._faults.values() if f.expires_at <= now]
        for fault in expired:
            del self._faults[fault.id]
            self._changed("expire", f"id={fault.id} effect={fault.effect} {fault.describe()}")
        count = len(expired)
        if self._clock_offset is not None and self._clock_offset.expires_at <= now:
            self._clock_offset = None
            self._changed("clock_clear", "reason=expired")
            count += 1
        return count

    def start_sweeper(self, interval: float = 1.0) -> None:
        """Sweep from a daemon thread so expiry is logged and counted on time (idempotent)."""
        with self._lock:
            if self._sweeper is not None and self._sweeper.is_alive():
                return
            self._stop.clear()
            self._sweeper = threading.Thread(
                target=self._sweep_loop,
                args=(interval,),
                name=f"faults-{self.service}",
                daemon=True,
            )
            self._sweeper.start()

    def stop_sweeper(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None

    def _sweep_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.sweep()

    def _changed(self, action: str, detail: str) -> None:
        self._metrics.changes.labels(service=self.service, action=action).inc()
        log.info("fault %s service=%s %s", action, self.service, detail)
