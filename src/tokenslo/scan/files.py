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


def files_under(paths: Sequence[str]) -> Iterator[Path]:
    """Each path that is a file, and every file below each directory (sorted, symbolic
    links to directories not followed)."""
    for path in map(Path, paths):
        if not path.is_dir():
            yield path
            continue
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                yield Path(root, name)


def read_texts(
    paths: Sequence[str], max_bytes: int, skipped: list[Skipped]
) -> Iterator[tuple[str, str]]:
    """``(name, text)`` for every scannable file; the others are appended to ``skipped``."""
    for path in files_under(paths):
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
