"""What one synthetic transaction found: plain data shared by the runner, metrics and CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# In the order they run; ``transaction`` is the verdict over all of them.
STEPS = (
    "discover",
    "token",
    "api",
    "insufficient_scope",
    "introspect",
    "revoke",
    "propagation",
    "jwks",
    "transaction",
)
RESULTS = ("success", "failure", "skipped")
STAGES = ("introspection", "api")
SKEW_SOURCES = ("date_header", "token_iat")

Result = Literal["success", "failure", "skipped"]


@dataclass(frozen=True)
class StepResult:
    step: str
    result: Result
    duration: float | None = None  # seconds, for steps that ran
    detail: str = ""  # why it failed or was skipped; never contains a token
    blocked: bool = False  # skipped because an earlier step failed (vs. not offered)

    @property
    def ok(self) -> bool:
        return self.result == "success"


@dataclass
class TransactionResult:
    target: str
    started_at: float
    finished_at: float = 0.0
    steps: dict[str, StepResult] = field(default_factory=dict)
    propagation: dict[str, float] = field(default_factory=dict)  # stage → seconds
    propagation_converged: dict[str, bool] = field(default_factory=dict)
    skew: dict[str, float] = field(default_factory=dict)  # source → seconds
    token_size: int | None = None
    token_ttl: float | None = None
    token_ref: str | None = None  # sha256[:12] of the access token
    kid_published: bool | None = None

    def add(self, step: StepResult) -> StepResult:
        self.steps[step.step] = step
        return step

    @property
    def ok(self) -> bool:
        """Every step that ran succeeded."""
        return all(s.result != "failure" for s in self.steps.values())

    @property
    def unreachable(self) -> bool:
        """Discovery failed: nothing else could be checked (exit 3 for ``--once``)."""
        discover = self.steps.get("discover")
        return discover is not None and not discover.ok
