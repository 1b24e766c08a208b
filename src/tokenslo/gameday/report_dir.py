"""Where a game day's report goes: a hidden ``.<stamp>.partial`` directory while it runs
(journals and logs land there as they come), renamed to ``<stamp>`` once complete.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tokenslo.files import write_atomically
from tokenslo.gameday.state import GameDay


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def partial_dir(gd: GameDay) -> Path:
    path = gd.options.out_dir / f".{_stamp(gd.started_at)}.partial"
    path.mkdir(parents=True, exist_ok=True)
    return path


def final_dir(gd: GameDay) -> Path:
    base = gd.options.out_dir / _stamp(gd.started_at)
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
