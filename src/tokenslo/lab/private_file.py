"""Atomic, owner-only files for lab state that must survive a restart (keys, revocations).

Written to a temporary sibling with mode 0600 from the first byte, then renamed
over the old file: a crash leaves the old file or the new one, never half of
one, and no other user can read it at any moment.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically; the file is mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply when tmp already existed
    os.replace(tmp, path)
