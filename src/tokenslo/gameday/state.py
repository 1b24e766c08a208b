"""One game day's data: its options, the target as reached, the mutable record every
phase adds to (events, runs, notes) and the outcome it ends with.

One ``GameDay`` is handed from phase to phase (reach, load, experiments, recovery,
finish), so the partial report an interrupt leaves behind sees everything so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tokenslo.core.model import SLO
from tokenslo.core.timescale import scale_slo
from tokenslo.errors import TokensloError
from tokenslo.gameday import evaluate as ev
from tokenslo.gameday import timeline as tl
from tokenslo.gameday.plan import ExperimentPlan, GameDayPlan
from tokenslo.lab import LAB_STATE_DIR
from tokenslo.target.model import Target


@dataclass(frozen=True)
class Options:
    plan: GameDayPlan
    include_extended: bool = False
    keep: bool = False
    state_dir: Path = Path(LAB_STATE_DIR)
    out_dir: Path = Path("reports")
    lab_config: str | None = None  # overrides the plan's target.lab_config
    progress: bool = True


@dataclass
class Outcome:
    exit_code: int
    report_dir: Path | None
    results: list[ev.ExperimentResult]
    interrupted: bool
    table: str = ""
    error: TokensloError | None = None  # what stopped the game day early (not an interrupt)


@dataclass
class Prepared:
    plan: ExperimentPlan
    expected_alerts: tuple[str, ...]


@dataclass
class Reached:
    """The target as the game day reaches it (no secrets: files only)."""

    kind: str  # lab | external
    target: Target
    configuration: dict[str, str]  # chaos configuration keys: the target file, SLO paths
    notifications_file: Path | None = None  # the lab's webhook log (read directly)
    started_lab: bool = False
    lab_state_dir: Path | None = None

    @property
    def urls(self) -> dict[str, str]:
        t = self.target
        found = {"idp": t.discovery_url, "api": t.api_url, "prometheus": t.prometheus_url}
        found.update(alertmanager=t.alertmanager_url, webhook=t.webhook_url)
        return {name: url for name, url in found.items() if url}

    @property
    def chaos_state_dir(self) -> Path:
        return self.target.state_dir

    @property
    def webhook_url(self) -> str | None:
        return self.target.webhook_url

    @property
    def admin_secret_file(self) -> Path | None:
        return self.target.admin_secret_file

    @property
    def admin_urls(self) -> dict[str, str]:
        """Fault injection endpoints only: the admin secret never goes anywhere else."""
        return {name: f.admin_url for name, f in self.target.faults.items()}

    @property
    def variables(self) -> dict[str, str]:
        """``--var`` for every experiment: the keys each bundled experiment declares."""
        return dict(self.configuration)


@dataclass
class GameDay:
    """Mutable record of one game day while it runs."""

    options: Options
    slos: list[SLO]
    prepared: list[Prepared]
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    reached: Reached | None = None
    load_started: bool = False
    events: list[tl.Event] = field(default_factory=list)
    runs: list[ev.ExperimentRun] = field(default_factory=list)
    interrupted: bool = False
    error: TokensloError | None = None
    notes: list[str] = field(default_factory=list)
    theory: dict[str, tuple[float, float]] = field(default_factory=dict)
    seen_firing: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def plan(self) -> GameDayPlan:
        return self.options.plan

    @property
    def scaled(self) -> list[SLO]:
        return [scale_slo(s, self.plan.time_scale) for s in self.slos]
