"""tokenslo's package layering, enforced (docs/architecture.md explains the layers).

``ALLOWED`` is the one table of which package may import which. It is written out by
hand on purpose: a new dependency between packages means editing this table, in review,
rather than drifting in. Lower layers first; no row names a package of a higher layer.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from layering import (
    KnownException,
    check_forbidden,
    check_layering,
    cycles,
    stale_exceptions,
)

SRC = Path(__file__).resolve().parents[1] / "src"

# Small shared modules every package outside core may use: the exit-code errors, the one
# atomic file writer, signal handling, bounded waiting, Markdown escaping, the canonical
# JWS form (one token name for the lab's logs and `scan`), what counts as a loopback host
# (lab, proxy, Prometheus client), and the package root (version).
SHARED = {"errors", "files", "signals", "waiting", "markdown", "jws", "loopback", "tokenslo"}

ALLOWED: dict[str, set[str]] = {
    # shared leaves: import no other tokenslo package
    "tokenslo": set(),  # the package root: __version__ (and Chaos Toolkit's discover, below)
    "errors": set(),
    "files": set(),
    "signals": set(),
    "waiting": set(),
    "markdown": set(),
    "jws": set(),
    "loopback": set(),
    # the one Jinja environment of the two template renderers (dashboards, reports); not in
    # SHARED because no other package renders templates
    "templating": {"errors"},
    # the pure core: model, durations, burn-rate math, SLI PromQL, time scaling
    "core": {"errors"},
    # edges and definitions on top of the core
    "prometheus": {"core"} | SHARED,
    "spec": {"core", "prometheus"} | SHARED,
    "rules": {"core", "spec"} | SHARED,
    "target": {"spec", "prometheus"} | SHARED,
    # Grafana dashboards: SLOs and the rules' series names, no Prometheus of their own
    "dashboards": {"core", "spec", "rules", "templating"} | SHARED,
    # evaluating SLOs, then reporting on them
    "engine": {"core", "spec", "prometheus", "target"} | SHARED,
    "reports": {"core", "spec", "prometheus", "target", "rules", "engine", "templating"} | SHARED,
    # runtime components
    "lab": {"core", "spec", "prometheus", "target", "rules"} | SHARED,
    "proxy": {"lab"} | SHARED,
    "prober": {"target"} | SHARED,
    "load": {"core", "spec", "prometheus", "target", "engine"} | SHARED,
    "chaos": {"core", "spec", "prometheus", "target", "rules", "engine", "lab", "load"} | SHARED,
    "gameday": {"core", "spec", "prometheus", "target", "rules", "engine", "reports"}
    | {"lab", "chaos"}
    | SHARED,
    # F9, secrets leaked into files: detect-secrets and joserfc over text, nothing of ours
    "scan": SHARED,
    # the command line: groups register their commands by module name (importlib), so
    # the top imports only the shared modules
    "cli": SHARED,
    "__main__": {"cli"} | SHARED,
}

# Imports against the table that are real and not cheap to remove today. Each one keeps
# a package cycle alive; remove the entry together with the import.
KNOWN_EXCEPTIONS = [
    KnownException(
        "tokenslo",
        "tokenslo.chaos.discovery",
        "Chaos Toolkit calls `discover` on the distribution's top-level package",
    ),
    KnownException(
        "tokenslo.target.check",
        "tokenslo.engine.evaluator",
        "`target check` evaluates the target's SLOs once to prove Prometheus has their series",
    ),
    KnownException(
        "tokenslo.target.loader",
        "tokenslo.lab",
        "the default target file is the one `lab up` writes (LAB_TARGET_FILE)",
    ),
]

# What "no I/O" means for core: no network, files, processes, clocks or terminal.
CORE_FORBIDDEN_MODULES = [
    "requests",
    "prometheus_api_client",
    "aiohttp",
    "httpx",
    "http",
    "urllib.request",
    "socket",
    "ssl",
    "subprocess",
    "os",
    "shutil",
    "tempfile",
    "pathlib",
    "io",
    "asyncio",
    "time",
    "signal",
    "yaml",
]
CORE_FORBIDDEN_CALLS = ["open", "print", "input"]


def _report(violations) -> str:
    return "\n".join(str(v) for v in violations)


def test_every_import_between_packages_follows_the_table():
    violations = check_layering(SRC, ALLOWED, KNOWN_EXCEPTIONS)
    assert not violations, "imports against ALLOWED (tests/test_layering.py):\n" + _report(
        violations
    )


def test_every_known_exception_is_still_needed():
    stale = stale_exceptions(SRC, KNOWN_EXCEPTIONS)
    assert not stale, f"no import needs these any more; remove them: {stale}"


def test_the_table_itself_is_layered():
    assert cycles(ALLOWED) == []


def test_core_does_no_io():
    violations = check_forbidden(SRC, "core", CORE_FORBIDDEN_MODULES, CORE_FORBIDDEN_CALLS)
    assert not violations, _report(violations)


def test_core_imports_only_core_and_errors():
    assert ALLOWED["core"] == {"errors"}


# ---------------------------------------------------------------- the checker can fail


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_checker_reports_violations_with_file_and_line(tmp_path):
    src = _tree(
        tmp_path,
        {
            "tokenslo/__init__.py": "",
            "tokenslo/core/__init__.py": "",
            "tokenslo/core/bad.py": """\
                \"\"\"A core module that talks to the network.\"\"\"
                import requests
                """,
            "tokenslo/spec/__init__.py": "",
            "tokenslo/spec/bad.py": """\
                def later():
                    from tokenslo.chaos import runner  # lazy, still a dependency
                    return runner
                """,
            "tokenslo/chaos/__init__.py": "",
            "tokenslo/chaos/runner.py": "from ..core import bad\n",
        },
    )
    layering = check_layering(src, ALLOWED)
    assert [(v.file, v.line, v.importer, v.imported) for v in layering] == [
        (src / "tokenslo/spec/bad.py", 2, "tokenslo.spec.bad", "tokenslo.chaos.runner")
    ]
    assert "spec may not import chaos" in str(layering[0])
    assert str(layering[0]).startswith(f"{src / 'tokenslo/spec/bad.py'}:2: ")

    io = check_forbidden(src, "core", CORE_FORBIDDEN_MODULES, CORE_FORBIDDEN_CALLS)
    assert [(v.file, v.line, v.imported) for v in io] == [
        (src / "tokenslo/core/bad.py", 2, "requests")
    ]


def test_checker_reports_io_calls_unknown_packages_and_stale_exceptions(tmp_path):
    src = _tree(
        tmp_path,
        {
            "tokenslo/core/read.py": "def load(p):\n    return open(p).read()\n",
            "tokenslo/newpkg/thing.py": "from tokenslo.core import read\n",
        },
    )
    (call,) = check_forbidden(src, "core", CORE_FORBIDDEN_MODULES, CORE_FORBIDDEN_CALLS)
    assert (call.line, call.imported) == (2, "open()")
    (unknown,) = check_layering(src, ALLOWED)
    assert "no row in the layering table" in unknown.why
    listed = KnownException("tokenslo.newpkg.thing", "tokenslo.core", "test")
    assert check_layering(src, ALLOWED, [listed]) == []
    assert stale_exceptions(src, KNOWN_EXCEPTIONS[:1]) == KNOWN_EXCEPTIONS[:1]


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]
