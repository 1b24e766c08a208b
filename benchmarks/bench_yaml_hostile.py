"""Benchmark: hostile YAML costs nothing (issue 11, Must show 1).

A ~260-byte alias bomb (7 levels, 9**7 strings once expanded) and a 5,000-deep file are
each given to ``tokenslo slo validate`` in a fresh process; the loader must refuse them
(exit 2, one line) in under 1 s and 100 MB. Reported per file: the whole process (wall
time and peak RSS from ``wait4``, interpreter start-up and imports included; the
limits apply to these) and the refusal alone, in-process (``load_result`` on the file,
median of 5). On a loaded machine the process time is mostly start-up and imports.

Run: .venv/bin/python benchmarks/bench_yaml_hostile.py
Prints lines like ``bomb bytes=244 exit=2 process_s=0.71 max_rss_mb=40.2 refusal_ms=0.83``.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import alias_bomb, deep_yaml  # noqa: E402
from tokenslo.errors import InputError  # noqa: E402
from tokenslo.spec.loader import load_result  # noqa: E402

LIMIT_SECONDS, LIMIT_MB = 1.0, 100.0


def run_cli(*args: str) -> tuple[int, float, float, str]:
    """Exit code, wall seconds, peak RSS (MB) and stderr of ``tokenslo *args``."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenslo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    return proc.returncode, elapsed, usage.ru_maxrss / 1024, stderr.strip()


def refusal_ms(path: Path) -> float:
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        with contextlib.suppress(InputError):
            load_result([path])
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in (("bomb", alias_bomb()), ("deep", deep_yaml(5000))):
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(text)
            code, seconds, rss, stderr = run_cli("slo", "validate", str(path))
            lines = stderr.splitlines()
            refusal = refusal_ms(path)
            ok &= code == 2 and len(lines) == 1 and rss < LIMIT_MB and seconds < LIMIT_SECONDS
            print(
                f"{name} bytes={len(text.encode())} exit={code} process_s={seconds:.2f} "
                f"max_rss_mb={rss:.1f} "
                f"refusal_ms={refusal:.2f} message={lines!r}"
            )
    print("within limits" if ok else f"OVER LIMITS ({LIMIT_SECONDS:g} s, {LIMIT_MB:g} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
