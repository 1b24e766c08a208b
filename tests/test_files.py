"""tokenslo.files.write_atomically: the one atomic, durable, permission-safe file writer."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokenslo.files import write_atomically


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def test_replaces_content_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("old\n")
    write_atomically(path, "new\n")
    assert path.read_text() == "new\n"
    assert _siblings(path) == ["rules.yaml"]


def test_text_is_written_byte_for_byte_and_bytes_as_given(tmp_path):
    path = tmp_path / "f"
    write_atomically(path, "é\r\nline\n")  # no newline translation, UTF-8 by default
    assert path.read_bytes() == "é\r\nline\n".encode()
    write_atomically(path, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    write_atomically(path, "é", encoding="latin-1")
    assert path.read_bytes() == b"\xe9"


def test_relative_path_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_atomically("plain.txt", "x")
    assert (tmp_path / "plain.txt").read_text() == "x"


@pytest.mark.parametrize("mode", [0o600, 0o644, 0o640, 0o755])
def test_mode_is_honoured_regardless_of_umask(tmp_path, mode):
    path = tmp_path / "f"
    old = os.umask(0o077)
    try:
        write_atomically(path, "x", mode=mode)
    finally:
        os.umask(old)
    assert _mode(path) == mode


def test_explicit_mode_replaces_a_wider_one(tmp_path):
    path = tmp_path / "secret"
    path.write_text("old")
    path.chmod(0o666)
    write_atomically(path, "new", mode=0o600)
    assert _mode(path) == 0o600


def test_without_mode_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    path.chmod(0o640)
    write_atomically(path, "new")
    assert _mode(path) == 0o640


def test_without_mode_a_new_file_gets_what_open_would_give(tmp_path):
    path = tmp_path / "f"
    write_atomically(path, "x")
    assert _mode(path) == 0o666 & ~_umask()


def test_content_is_never_readable_by_others_while_written(tmp_path, monkeypatch):
    """The temporary file is 0600 from its creation until its final chmod: observed at the
    fsync, when all the content is in it."""
    seen: list[int] = []
    real_fsync = os.fsync

    def observing_fsync(fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            seen.append(stat.S_IMODE(st.st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", observing_fsync)
    write_atomically(tmp_path / "f", "secret", mode=0o644)
    assert seen == [0o600]
    assert _mode(tmp_path / "f") == 0o644


def test_failed_rename_removes_the_temp_file(tmp_path):
    """A real failure after the temporary file was written: the target is a directory."""
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_text("keep")
    with pytest.raises(OSError):
        write_atomically(target, "x")
    assert _siblings(target) == ["taken"]
    assert (target / "inside").read_text() == "keep"


def test_failed_write_removes_the_temp_file_and_keeps_the_old_file(tmp_path):
    """A real failure in the middle of writing: a file-size limit (EFBIG), set in a
    child process so this one is not limited."""
    path = tmp_path / "state.json"
    path.write_text("old content\n")
    code = textwrap.dedent(
        f"""
        import resource, signal, sys
        from tokenslo.files import write_atomically
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))
        try:
            write_atomically({str(path)!r}, "x" * 100_000)
        except OSError as exc:
            sys.exit(7 if exc.errno is not None else 1)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 7, result.stderr
    assert path.read_text() == "old content\n"
    assert _siblings(path) == ["state.json"]


def test_missing_directory_is_the_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "f", "x")
    assert list(tmp_path.iterdir()) == []


def test_unencodable_text_leaves_the_old_file(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "é", encoding="ascii")
    assert path.read_text() == "old"
    assert _siblings(path) == ["f"]
