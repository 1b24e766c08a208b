"""The scan's reading edge: the files under the given paths, as text for the core.

Binary files (a NUL byte in the first 8 KiB) and files over the size limit are
skipped with a note rather than read: a CI workspace holds archives and images, and a
secret in them is out of reach of a line scanner anyway. Text is decoded as UTF-8 with
undecodable bytes replaced, because CI logs mix encodings and must still be scanned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from tokenslo.errors import InputError

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Skipped:
    """A file left unscanned, and why."""

    file: str
    reason: str


def check_paths(paths: Sequence[str]) -> None:
    """Refuse the whole scan (exit 2) when a path does not exist: a typo must not
    pass as a clean result."""
    for path in paths:
        if not os.path.lexists(path):
            raise InputError("not found", file=path)


def read_patterns(file: str) -> list[str]:
    """The exclusion patterns of ``--exclude-from``: one per line, ``#`` starts a comment
    (so each pattern can carry its reason), blank lines ignored."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=file) from exc
    patterns = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [pattern for pattern in patterns if pattern]


def excluded(relative: str, patterns: Sequence[str]) -> bool:
    """Whether a file, named by its POSIX path below the scanned directory (or as given
    for a file argument), matches a pattern. ``*`` crosses ``/`` (``fnmatch``), so
    ``*/credentials.yaml`` names that file at any depth."""
    return any(fnmatchcase(relative, pattern) for pattern in patterns)


def files_under(paths: Sequence[str], exclude: Sequence[str] = ()) -> Iterator[Path]:
    """Each path that is a file, and every file below each directory (sorted, symbolic
    links to directories not followed), minus those ``exclude`` names."""
    for path in map(Path, paths):
        if not path.is_dir():
            if not excluded(path.as_posix(), exclude):
                yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                file = Path(root, name)
                if not excluded(file.relative_to(path).as_posix(), exclude):
                    yield file


def read_texts(
    paths: Sequence[str], max_bytes: int, skipped: list[Skipped], exclude: Sequence[str] = ()
) -> Iterator[tuple[str, str]]:
    """``(name, text)`` for every scannable file not excluded; the others are appended to
    ``skipped``."""
    for path in files_under(paths, exclude):
        reason, data = _read(path, max_bytes)
        if reason:
            skipped.append(Skipped(str(path), reason))
        else:
            yield str(path), data.decode("utf-8", errors="replace")


def _read(path: Path, max_bytes: int) -> tuple[str, bytes]:
    """``(why it was skipped, b"")`` or ``("", its bytes)``."""
    try:
        if not path.is_file():
            return "not a regular file", b""
        size = path.stat().st_size
        if size > max_bytes:
            return f"larger than {max_bytes} bytes ({size})", b""
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror}", b""
    if b"\0" in data[:SNIFF_BYTES]:
        return "binary", b""
    return "", data
