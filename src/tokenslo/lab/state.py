"""The recorded lab: ``state.json`` in the state dir, and the files written beside it.

Processes are recorded with their PID and the kernel's start time of that PID
(``/proc/<pid>/stat``), so nothing ever signals a recycled PID that now belongs to
something else. The state is written as soon as each component is spawned, so
``down`` finds every process even when ``up`` was killed half way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tokenslo.errors import InputError
from tokenslo.files import write_atomically
from tokenslo.lab import target_file
from tokenslo.lab.config import LabConfig
from tokenslo.lab.credentials import read_credentials
from tokenslo.lab.faults.client import LabAdmin
from tokenslo.prometheus.process import pid_alive, proc_start_time

STATE_FILE = "state.json"
NOTIFICATIONS_FILE = "notifications.jsonl"


@dataclass
class Component:
    name: str
    pid: int
    start_time: int | None
    port: int
    url: str
    health_url: str
    log: str

    def is_ours_and_alive(self) -> bool:
        """Alive, and the PID still belongs to the process we started (not a recycled one)."""
        return pid_alive(self.pid) and proc_start_time(self.pid) == self.start_time


@dataclass
class LabState:
    state_dir: Path
    components: dict[str, Component]
    started_at: float
    admin_secret_file: Path
    credentials_file: Path
    notifications_file: Path
    issuer: str
    audience: str
    already_running: bool = False
    notes: list[str] = field(default_factory=list)
    # False while ``up`` is still starting components: the state names every process started
    # so far, so ``down`` finds them even if ``up`` was killed half way.
    complete: bool = True

    @property
    def urls(self) -> dict[str, str]:
        return {name: c.url for name, c in self.components.items()}

    def admin_secret(self) -> str:
        return self.admin_secret_file.read_text(encoding="utf-8").strip()

    def credentials(self) -> dict[str, str]:
        """client_id → plaintext secret."""
        return read_credentials(self.credentials_file)

    def admin(self, component: str) -> LabAdmin:
        """Admin client for ``idp`` or ``gateway``."""
        return LabAdmin(self.components[component].url, self.admin_secret())

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "issuer": self.issuer,
            "audience": self.audience,
            "admin_secret_file": str(self.admin_secret_file),
            "credentials_file": str(self.credentials_file),
            "notifications_file": str(self.notifications_file),
            "components": {name: asdict(c) for name, c in self.components.items()},
            "complete": self.complete,
        }

    @classmethod
    def from_json(cls, state_dir: Path, data: dict[str, Any]) -> LabState:
        return cls(
            state_dir=state_dir,
            components={n: Component(**c) for n, c in data["components"].items()},
            started_at=float(data["started_at"]),
            admin_secret_file=Path(data["admin_secret_file"]),
            credentials_file=Path(data["credentials_file"]),
            notifications_file=Path(data["notifications_file"]),
            issuer=data["issuer"],
            audience=data["audience"],
            complete=bool(data.get("complete", True)),
        )


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    alive: bool
    healthy: bool
    url: str

    @property
    def state(self) -> str:
        if not self.alive:
            return "down"
        return "healthy" if self.healthy else "unhealthy"


def read_state(state_dir: Path, *, partial: bool = False) -> LabState | None:
    """The recorded lab; None when there is none, or (unless ``partial``) while ``up`` is
    still starting it or was killed half way: callers that need its URLs must not see a
    lab without all of its components. ``down`` and ``up`` itself read partial states."""
    path = Path(state_dir) / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = LabState.from_json(Path(state_dir), data)
        return state if partial or state.complete else None
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"corrupt lab state ({exc}); stop stray processes by hand", file=str(path)
        ) from None


def write_state(state: LabState) -> None:
    write_lab_file(state.state_dir / STATE_FILE, json.dumps(state.to_json(), indent=2) + "\n")


def write_target_file(state: LabState, config: LabConfig) -> Path:
    """The lab as a target (``target.yaml``): how every other component finds it."""
    path = state.state_dir / target_file.TARGET_FILE
    document = target_file.lab_target(
        urls=state.urls,
        issuer=state.issuer,
        state_dir=state.state_dir,
        credentials_file=state.credentials_file,
        admin_secret_file=state.admin_secret_file,
        slo_paths=[str(Path(p).resolve()) for p in config.slo_paths],
    )
    write_lab_file(path, target_file.render(document))
    return path


def write_lab_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Lab files are 0644 (every component reads them) unless they hold secrets (0600)."""
    write_atomically(path, text, mode=mode)


@contextlib.contextmanager
def locked(state_dir: Path) -> Iterator[None]:
    """One ``up``/``down`` at a time per state dir."""
    with open(state_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_state(state_dir: str | Path) -> LabState | None:
    """The recorded lab (running or not), for callers that need its URLs and files."""
    return read_state(Path(state_dir).resolve())
