"""An import-layering checker for a source tree, read from its AST (nothing is imported).

Kept with the tests, not in the shipped package: it only exists to hold tokenslo's
package table (tests/test_layering.py) true. Every ``import`` and ``from … import``
counts, including those inside functions and ``if`` blocks, because a lazy import is
still a dependency: it only moves the failure from start-up to the first call.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT_PACKAGE = "tokenslo"


@dataclass(frozen=True)
class Import:
    """One imported module, where the import statement is."""

    file: Path
    line: int
    importer: str  # dotted module doing the import, e.g. tokenslo.spec.cli
    imported: str  # dotted module imported, e.g. tokenslo.core.model


@dataclass(frozen=True)
class Violation:
    """An import the rules forbid, with enough to find and judge it at once."""

    file: Path
    line: int
    importer: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.importer} imports {self.imported} ({self.why})"


@dataclass(frozen=True)
class KnownException:
    """A known violation, listed so it stays visible until someone removes it."""

    importer: str  # exact module
    imported: str  # module (or a package containing it)
    reason: str

    def covers(self, imp: Import) -> bool:
        return imp.importer == self.importer and _within(imp.imported, self.imported)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(src: Path, file: Path) -> str:
    """``src/tokenslo/spec/cli.py`` → ``tokenslo.spec.cli``; a package's ``__init__`` is
    the package itself."""
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(src: Path, top: str = ROOT_PACKAGE) -> list[Path]:
    return sorted((src / top).rglob("*.py"))


def imports_of(src: Path, file: Path, modules: set[str]) -> Iterator[Import]:
    """Every module ``file`` imports. ``from package import name`` names the submodule
    when ``package.name`` is one of ``modules``, else the package itself."""
    importer = module_name(src, file)
    is_package = file.name == "__init__.py"
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(file, node.lineno, importer, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(importer, is_package, node.level, node.module)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                imported = candidate if candidate in modules else base
                yield Import(file, node.lineno, importer, imported)


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module of a (possibly relative) ``from`` import."""
    if level == 0:
        return module or ""
    parts = importer.split(".")
    if not is_package:
        parts = parts[:-1]  # a module's relative imports start from its package
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, module] if module else parts)


def package_of(module: str, top: str = ROOT_PACKAGE) -> str | None:
    """The layer a module belongs to: its first component under ``top`` (``core``,
    ``spec``, ``cli`` for ``tokenslo/cli.py``), ``top`` itself for the package root,
    None outside ``top``."""
    parts = module.split(".")
    if parts[0] != top:
        return None
    return parts[1] if len(parts) > 1 else top


def all_imports(src: Path, top: str = ROOT_PACKAGE) -> list[Import]:
    files = python_files(src, top)
    modules = {module_name(src, f) for f in files}
    return [imp for f in files for imp in imports_of(src, f, modules)]


def check_layering(
    src: Path,
    allowed: Mapping[str, set[str]],
    exceptions: Iterable[KnownException] = (),
    top: str = ROOT_PACKAGE,
) -> list[Violation]:
    """Imports between packages that ``allowed`` (package → packages it may import) does
    not permit and no listed exception covers. A package missing from the table is a
    violation too: a new package must take a place in the layering on purpose."""
    known = list(exceptions)
    out = []
    for imp in all_imports(src, top):
        source, target = package_of(imp.importer, top), package_of(imp.imported, top)
        if source is None or target is None or source == target:
            continue
        if source not in allowed:
            why = f"package {source!r} has no row in the layering table"
        elif target in allowed[source]:
            continue
        else:
            why = f"{source} may not import {target}"
        if not any(e.covers(imp) for e in known):
            out.append(Violation(imp.file, imp.line, imp.importer, imp.imported, why))
    return out


def stale_exceptions(
    src: Path, exceptions: Iterable[KnownException], top: str = ROOT_PACKAGE
) -> list[KnownException]:
    """Listed exceptions no import needs any more (remove them, so the list only shrinks)."""
    imports = all_imports(src, top)
    return [e for e in exceptions if not any(e.covers(imp) for imp in imports)]


def check_forbidden(
    src: Path,
    package: str,
    forbidden_modules: Iterable[str],
    forbidden_calls: Iterable[str] = (),
    top: str = ROOT_PACKAGE,
) -> list[Violation]:
    """Imports of ``forbidden_modules`` (or their submodules) and calls of the builtins
    ``forbidden_calls`` anywhere in ``top.package``."""
    banned, calls = list(forbidden_modules), set(forbidden_calls)
    files = python_files(src / top, package)
    modules = {module_name(src, f) for f in python_files(src, top)}
    out = []
    for file in files:
        for imp in imports_of(src, file, modules):
            hit = next((b for b in banned if _within(imp.imported, b)), None)
            if hit:
                why = f"{package} must do no I/O: {hit} is forbidden there"
                out.append(Violation(file, imp.line, imp.importer, imp.imported, why))
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in calls
            ):
                why = f"{package} must do no I/O: the builtin {node.func.id}() is forbidden there"
                importer = module_name(src, file)
                out.append(Violation(file, node.lineno, importer, f"{node.func.id}()", why))
    return out


def cycles(allowed: Mapping[str, set[str]]) -> list[list[str]]:
    """Cycles among the table's packages (each as a path that returns to its start)."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(allowed.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for start in sorted(allowed):
        visit(start, [])
    return found
