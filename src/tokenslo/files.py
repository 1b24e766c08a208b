"""The one way tokenslo replaces a file: atomically, durably, never readable too widely.

Prometheus reloads rule files, the lab's components read their configs and
secrets, and people read reports while they are being regenerated. All of them
must see the old file or the new one, never half of one; a crash or power loss
must not leave an empty file behind; and a file that holds secrets must never be
readable by others, not even for an instant. Hence, for every write:

1. a temporary file in the *same directory* (so the rename stays on one
   filesystem and is atomic), created exclusively (``O_CREAT | O_EXCL``) with
   mode 0600, so nobody else can read it while it fills;
2. the data is written, flushed and fsynced (the rename must not reach the disk
   before the content);
3. the final permissions are set (see ``mode``), then ``os.replace`` swaps it in;
4. the directory is fsynced so the rename itself survives a crash;
5. on any failure the temporary file is removed and the old file is left intact.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def write_atomically(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    mode: int | None = None,
    encoding: str = "utf-8",
) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring).

    ``data`` may be text (encoded with ``encoding``, newlines written as given)
    or bytes. ``mode`` is the file's final permission bits, e.g. ``0o600`` for
    secrets or ``0o644`` for files another user must read; when None the file
    keeps the replaced file's permissions, or gets what a plain ``open()`` would
    create (0666 minus the umask), just like writing it in place would.

    The parent directory must exist (callers decide whether to create it or to
    report a missing one as bad input); errors are the OS's own ``OSError``.
    """
    target = Path(path)
    content = data.encode(encoding) if isinstance(data, str) else data
    final_mode = _mode_for(target) if mode is None else mode
    directory = target.parent if str(target.parent) else Path(".")
    # mkstemp opens with O_CREAT | O_EXCL and mode 0600: private from the first byte.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), final_mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what a plain ``open()`` would give."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask. Read from /proc where possible: ``os.umask`` can only read it by
    setting it, and for that instant another thread would create files world-writable."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o077)  # restored at once; 077 errs on the private side meanwhile
    os.umask(umask)
    return umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable. Best effort: the file is already replaced, and some
    filesystems refuse to fsync a directory; that must not fail the write."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
