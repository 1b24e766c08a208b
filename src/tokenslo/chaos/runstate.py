"""What this experiment run has set: fault ids, clock offsets, unpublished keys, load PIDs.

Chaos Toolkit runs every activity of one ``chaos run`` in one Python process, so
the record lives in memory, and a copy (without tokens) is written to
``<lab state dir>/chaos-runs/<run id>.json`` so a person can see after a crash
what was set and until when. Rollbacks clear exactly what is recorded here.
Tokens the probes keep for later checks stay in memory only.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokenslo.files import write_atomically

RUN_ID_ENV = "TOKENSLO_CHAOS_RUN_ID"
RUNS_DIR = "chaos-runs"


@dataclass
class Change:
    """One thing an action set, and how a rollback undoes it."""

    kind: str  # fault | clock | key
    target: str  # idp, gateway, proxy or an admin URL
    admin_url: str
    ref: str  # fault id, "clock", or the key id
    set_at: float
    expires_at: float | None
    detail: dict[str, Any] = field(default_factory=dict)
    cleared_at: float | None = None


@dataclass
class RunState:
    run_id: str
    changes: list[Change] = field(default_factory=list)
    events: dict[str, float] = field(default_factory=dict)  # injected_at, cleared_at, …
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → pid, start time
    path: Path | None = None
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def record(self, change: Change) -> None:
        with _LOCK:
            self.changes.append(change)
        self.save()

    def mark(self, event: str, at: float | None = None) -> float:
        at = time.time() if at is None else at
        with _LOCK:
            self.events[event] = at
        self.save()
        return at

    def active(self, kind: str | None = None) -> list[Change]:
        return [c for c in self.changes if c.cleared_at is None and kind in (None, c.kind)]

    def remember_token(self, name: str, token: str) -> None:
        self._tokens[name] = token

    def token(self, name: str) -> str | None:
        return self._tokens.get(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "changes": [asdict(c) for c in self.changes],
            "events": dict(self.events),
            "processes": dict(self.processes),
        }

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, json.dumps(self.to_json(), indent=2) + "\n")
        except OSError:
            pass  # the in-memory record is authoritative; the file is for people


_LOCK = threading.RLock()
_CURRENT: RunState | None = None


def current(state_dir: Path | None = None) -> RunState:
    """This process's run (created on first use; its file goes under ``state_dir``)."""
    global _CURRENT
    with _LOCK:
        if _CURRENT is None:
            run_id = os.environ.get(RUN_ID_ENV) or f"{int(time.time())}-{uuid.uuid4().hex[:8]}"
            _CURRENT = RunState(run_id=run_id)
        if state_dir is not None and _CURRENT.path is None:
            _CURRENT.path = Path(state_dir) / RUNS_DIR / f"{_CURRENT.run_id}.json"
            _CURRENT.save()
        return _CURRENT


def reset() -> None:
    """Forget the current run (tests)."""
    global _CURRENT
    with _LOCK:
        _CURRENT = None
