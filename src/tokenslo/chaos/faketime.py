"""Clock skew outside the lab: run the validator under libfaketime, move its clock at run time.

The target is started once with ``LD_PRELOAD`` = libfaketime (Debian package
``faketime``), ``FAKETIME_TIMESTAMP_FILE`` = a file holding an offset such as
``+120`` and ``FAKETIME_NO_CACHE=1`` (re-read the file on every call). The action
``set_faketime_offset`` then rewrites the file and checks that the offset really
took effect (the target's ``Date`` header, or the ``iat`` of a fresh token);
``clear_faketime_offset`` is its rollback.

Traps this module detects instead of documenting only (docs/proxy-and-faketime.md):

* libfaketime works through the dynamic loader: statically linked programs and Go
  programs (Go reads the clock through the vDSO/raw syscalls, cgo or not) ignore it.
  ``check_fakeable`` reads the ELF and refuses them.
* With the monotonic clock faked (libfaketime's default) CPython's timed waits
  (``Event.wait``, lock/queue timeouts: ``sem_clockwait`` on CLOCK_MONOTONIC, which
  libfaketime does not intercept) hang (libfaketime #390), and every offset change
  makes the monotonic clock jump under asyncio's timers.
* With ``FAKETIME_DONT_FAKE_MONOTONIC=1`` libfaketime 0.9.10 mistranslates
  ``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)``, so ``time.sleep`` fails with
  EINVAL on CPython ≥ 3.11 (libfaketime #426).

No environment setting of libfaketime 0.9.10 avoids both (tested in
tests/chaos/test_faketime.py). The recommended setup keeps the monotonic clock real
(``FAKETIME_DONT_FAKE_MONOTONIC=1``) and preloads, before libfaketime, a 10-line shim
that sends monotonic ``clock_nanosleep`` straight to the kernel (``build_monotonic_shim``).
"""

from __future__ import annotations

import base64
import email.utils
import glob
import hashlib
import json
import logging
import math
import mmap
import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tokenslo.errors import CheckFailed, InputError, UnavailableError
from tokenslo.files import write_atomically

__all__ = [
    "set_faketime_offset",
    "clear_faketime_offset",
]

log = logging.getLogger("tokenslo.chaos.faketime")

LIBFAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
)
SHIM_NAME = "libtokenslo-monotonic-shim"
MONOTONIC_SHIM_SOURCE = r"""
/* tokenslo: with FAKETIME_DONT_FAKE_MONOTONIC=1 the monotonic clock is real, so a
   monotonic clock_nanosleep must reach the kernel untranslated (libfaketime #426).
   Preload this BEFORE libfaketime; every other clock still goes through it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*next_fn)(clockid_t, int, const struct timespec *, struct timespec *);

int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem) {
    if (id == CLOCK_MONOTONIC)
        return syscall(SYS_clock_nanosleep, id, flags, req, rem) == 0 ? 0 : errno;
    static next_fn next;
    if (!next) next = (next_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    return next ? next(id, flags, req, rem) : ENOSYS;
}
"""
MAX_OFFSET_SECONDS = 10 * 365 * 86400.0
GO_SECTIONS = (b".go.buildinfo", b".note.go.buildid", b".gopclntab", b".gosymtab")
GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
PT_INTERP = 3
ISSUE_EINVAL = "libfaketime #426"
ISSUE_HANG = "libfaketime #390"


# -- which programs libfaketime can affect ---------------------------------------------------


@dataclass(frozen=True)
class ElfInfo:
    path: str
    interpreter: str | None  # PT_INTERP: the dynamic loader that honours LD_PRELOAD
    go: bool

    @property
    def dynamic(self) -> bool:
        return self.interpreter is not None


def parse_elf(data: bytes | mmap.mmap, path: str = "<bytes>") -> ElfInfo:
    """Loader and Go markers of an ELF image (pure: bytes in, facts out)."""
    try:
        return _parse_elf(data, path)
    except struct.error:
        raise InputError("truncated ELF headers", file=path) from None


def _parse_elf(data: bytes | mmap.mmap, path: str) -> ElfInfo:
    if data[:4] != b"\x7fELF" or len(data) < 52:
        raise InputError("not an ELF executable", file=path)
    bits, order = data[4], {1: "<", 2: ">"}.get(data[5])
    if bits not in (1, 2) or order is None:
        raise InputError("unsupported ELF class or byte order", file=path)
    header = order + ("HHIQQQIHHHHHH" if bits == 2 else "HHIIIIIHHHHHH")
    fields = struct.unpack_from(header, data, 16)
    phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx = (
        fields[4], fields[5], fields[8], fields[9], fields[10], fields[11], fields[12],
    )  # fmt: skip
    interpreter = None
    for i in range(phnum):
        base = phoff + i * phentsize
        if base + phentsize > len(data):
            break
        if struct.unpack_from(order + "I", data, base)[0] != PT_INTERP:
            continue
        if bits == 2:
            offset, size = struct.unpack_from(order + "Q16xQ", data, base + 8)
        else:
            offset, size = struct.unpack_from(order + "I8xI", data, base + 4)
        interpreter = data[offset : offset + size].rstrip(b"\0").decode("utf-8", "replace")
    names = _section_names(data, order, bits, shoff, shentsize, shnum, shstrndx)
    # Section names say it cheaply; only a binary without section headers is scanned.
    go = any(name in names for name in GO_SECTIONS) or (
        not names and data.find(GO_BUILDINFO_MAGIC) != -1
    )
    return ElfInfo(path=path, interpreter=interpreter, go=go)


def _section_names(
    data: bytes | mmap.mmap,
    order: str,
    bits: int,
    shoff: int,
    shentsize: int,
    shnum: int,
    shstrndx: int,
) -> set[bytes]:
    if not shoff or not shnum or shstrndx >= shnum:
        return set()
    layout = order + ("I4x8x8xQQ" if bits == 2 else "I4x4x4xII")

    def section(index: int) -> tuple[int, int, int]:
        return struct.unpack_from(layout, data, shoff + index * shentsize)

    try:
        _, str_offset, str_size = section(shstrndx)
        table = data[str_offset : str_offset + str_size]
        names = set()
        for i in range(shnum):
            start = section(i)[0]
            names.add(table[start : table.index(b"\0", start)])
        return names
    except (struct.error, ValueError):
        return set()


def _resolve_program(program: str) -> Path:
    found = shutil.which(program) if "/" not in program else program
    if not found or not Path(found).is_file():
        raise InputError(f"program not found: {program!r}", field="program")
    return Path(found).resolve()


def check_fakeable(program: str, _depth: int = 0) -> ElfInfo:
    """Refuse programs libfaketime cannot affect; follow ``#!`` scripts to their interpreter."""
    path = _resolve_program(program)
    with path.open("rb") as fh:
        head = fh.read(256)
        if head.startswith(b"#!") and _depth < 3:
            words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
            if not words:
                raise InputError("empty #! line", file=str(path))
            interpreter = words[0]
            if Path(interpreter).name == "env":
                rest = [w for w in words[1:] if not w.startswith("-")]
                if not rest:
                    raise InputError("#!/usr/bin/env without a program", file=str(path))
                interpreter = rest[0]
            return check_fakeable(interpreter, _depth + 1)
        if not head.startswith(b"\x7fELF"):
            raise InputError("not an ELF executable or #! script", file=str(path))
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as image:
            info = parse_elf(image, str(path))
    if info.go:
        raise InputError(
            "is a Go program: Go reads the clock without going through libc, so libfaketime "
            "cannot shift it; skew this target's clock another way (e.g. a time namespace "
            "or the host clock of a disposable VM)",
            file=str(path),
        )
    if not info.dynamic:
        raise InputError(
            "is statically linked (no ELF interpreter): LD_PRELOAD is never honoured, so "
            "libfaketime cannot shift its clock",
            file=str(path),
        )
    return info


# -- the environment the target runs with -----------------------------------------------------


def find_libfaketime() -> Path:
    for pattern in LIBFAKETIME_GLOBS:
        for match in sorted(glob.glob(pattern)):
            return Path(match)
    raise UnavailableError(
        "libfaketime not found; install the Debian package 'faketime' "
        "(apt-get install --no-install-recommends faketime)"
    )


def build_monotonic_shim(dest_dir: str | Path, compiler: str | None = None) -> Path:
    """Compile the monotonic ``clock_nanosleep`` shim once per source version; returns the .so."""
    digest = hashlib.sha256(MONOTONIC_SHIM_SOURCE.encode()).hexdigest()[:12]
    dest = Path(dest_dir) / f"{SHIM_NAME}-{digest}.so"
    if dest.is_file():
        return dest
    cc = compiler or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise UnavailableError(
            "no C compiler to build the monotonic shim; install gcc, or build "
            f"{SHIM_NAME}.so elsewhere from docs/proxy-and-faketime.md"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "shim.c"
        source.write_text(MONOTONIC_SHIM_SOURCE)
        built = Path(tmp) / "shim.so"
        result = subprocess.run(
            [cc, "-shared", "-fPIC", "-O2", "-o", str(built), str(source), "-ldl"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise UnavailableError(f"building the monotonic shim failed: {result.stderr.strip()}")
        # Copied, not renamed: the temporary directory may be on another filesystem than
        # dest (a rename would fail with EXDEV). Atomic: a concurrent build never sees half
        # a file. The compiler's permissions are kept.
        write_atomically(dest, built.read_bytes(), mode=stat.S_IMODE(built.stat().st_mode))
    return dest


def recommended_env(
    timestamp_file: str | Path, shim: str | Path, libfaketime: str | Path | None = None
) -> dict[str, str]:
    """Variables to start a target with (add them to its environment)."""
    lib = Path(libfaketime) if libfaketime else find_libfaketime()
    return {
        "LD_PRELOAD": f"{Path(shim).resolve()}:{lib}",
        "FAKETIME_TIMESTAMP_FILE": str(Path(timestamp_file).resolve()),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


@dataclass(frozen=True)
class Problem:
    severity: str  # "refuse": the offset would not work or would break the target; "warn"
    message: str


def env_problems(
    env: Mapping[str, str], timestamp_file: str | Path | None = None, python: bool = False
) -> list[Problem]:
    """What is wrong with a target's libfaketime environment (pure)."""
    preload = [p for p in env.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p]
    names = [Path(p).name for p in preload]
    problems: list[Problem] = []
    fake_index = next((i for i, n in enumerate(names) if n.startswith("libfaketime")), None)
    if fake_index is None:
        return [Problem("refuse", "LD_PRELOAD does not load libfaketime")]
    ts_file = env.get("FAKETIME_TIMESTAMP_FILE")
    if not ts_file:
        problems.append(Problem("refuse", "FAKETIME_TIMESTAMP_FILE is not set"))
    elif timestamp_file is not None and Path(ts_file).resolve() != Path(timestamp_file).resolve():
        problems.append(
            Problem("refuse", f"FAKETIME_TIMESTAMP_FILE is {ts_file}, not {timestamp_file}")
        )
    if "FAKETIME" in env:
        problems.append(Problem("refuse", "FAKETIME is set: it overrides the timestamp file"))
    if env.get("FAKETIME_NO_CACHE") != "1":
        problems.append(
            Problem(
                "warn",
                "FAKETIME_NO_CACHE is not 1: offset changes are seen only after "
                "libfaketime's cache expires (FAKETIME_CACHE_DURATION, 10 s by default)",
            )
        )
    shimmed = any(n.startswith(SHIM_NAME) for n in names[:fake_index])
    if env.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
        if not shimmed:
            problems.append(
                Problem(
                    "refuse",
                    "FAKETIME_DONT_FAKE_MONOTONIC=1 without the monotonic shim before "
                    f"libfaketime in LD_PRELOAD: time.sleep fails with EINVAL ({ISSUE_EINVAL})",
                )
            )
    else:
        problems.append(
            Problem(
                "refuse" if python else "warn",
                "the monotonic clock is faked (FAKETIME_DONT_FAKE_MONOTONIC is not 1): "
                f"CPython timed waits (Event.wait, lock/queue timeouts) hang ({ISSUE_HANG}) "
                "and each offset change makes the monotonic clock jump",
            )
        )
    return problems


def _read_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError as exc:
        raise UnavailableError(
            f"cannot read the environment of PID {pid}: {exc.strerror}"
        ) from None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return env


def check_target_process(pid: int, timestamp_file: str | Path) -> list[str]:
    """Refuse a running target libfaketime cannot shift safely; returns the warnings."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError as exc:
        raise UnavailableError(f"no process {pid} to check ({exc.strerror})") from None
    check_fakeable(exe)
    python = Path(exe).name.startswith("python")
    problems = env_problems(_read_environ(pid), timestamp_file, python=python)
    refused = [p.message for p in problems if p.severity == "refuse"]
    if refused:
        raise InputError(
            f"target PID {pid} ({Path(exe).name}): " + "; ".join(refused), field="target_pid"
        )
    return [p.message for p in problems]


# -- the offset file ---------------------------------------------------------------------------


def format_offset(offset_seconds: float) -> str:
    """libfaketime's relative-offset syntax: ``+120``, ``-30``, ``+1.5`` (never an exponent)."""
    if isinstance(offset_seconds, bool) or not isinstance(offset_seconds, int | float):
        raise InputError(f"must be a number, got {offset_seconds!r}", field="offset_seconds")
    if not math.isfinite(offset_seconds) or abs(offset_seconds) > MAX_OFFSET_SECONDS:
        raise InputError(
            f"must be within ±{MAX_OFFSET_SECONDS:g} s, got {offset_seconds!r}",
            field="offset_seconds",
        )
    text = f"{offset_seconds:+.3f}".rstrip("0").rstrip(".")
    return "+0" if text in ("+", "-", "-0", "+0") else text


def write_offset(timestamp_file: str | Path, offset_seconds: float) -> None:
    """Replace the file atomically: the target never reads a half-written offset."""
    path = Path(timestamp_file)
    text = format_offset(offset_seconds) + "\n"
    if not path.parent.is_dir():
        raise InputError("directory does not exist", file=str(path.parent), field="timestamp_file")
    write_atomically(path, text, mode=0o644)  # the target may run as another user


# -- verification ------------------------------------------------------------------------------


def offset_from_date(url: str, timeout: float = 5.0) -> float:
    """Target clock minus ours, from its ``Date`` header (1 s resolution)."""
    before = time.time()
    response = _get(url, timeout)
    after = time.time()
    header = response.headers.get("Date")
    if not header:
        raise CheckFailed(f"{url} sent no Date header; verify with verify='iat' instead")
    try:
        stamp = email.utils.parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        raise CheckFailed(f"{url} sent an unparsable Date header {header!r}") from None
    # Date is truncated to the second: compare against the middle of that second.
    return stamp + 0.5 - (before + after) / 2


def offset_from_iat(
    token_url: str, client_id: str, client_secret: str, timeout: float = 5.0
) -> float:
    """Target clock minus ours, from the ``iat`` of a freshly issued JWT access token."""
    before = time.time()
    try:
        response = requests.post(
            token_url,
            data={"grant_type": "client_credentials"},
            auth=(client_id, client_secret),
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise UnavailableError(f"POST {token_url}: {type(exc).__name__}") from None
    after = time.time()
    if response.status_code != 200:
        raise CheckFailed(f"POST {token_url}: HTTP {response.status_code}, no token to read iat")
    try:
        token = response.json()["access_token"]
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        iat = float(claims["iat"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise CheckFailed(f"{token_url} did not issue a JWT with an iat claim") from None
    # Only iat is read (no trust decision), so the signature is not verified here.
    return iat + 0.5 - (before + after) / 2


def _get(url: str, timeout: float) -> requests.Response:
    try:
        return requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        raise UnavailableError(f"GET {url}: {type(exc).__name__}") from None


@dataclass
class _Verifier:
    url: str
    method: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)

    def observe(self) -> float:
        if self.method == "date":
            return offset_from_date(self.url)
        return offset_from_iat(self.url, self.client_id or "", self.client_secret or "")


def _verifier(
    verify_url: str, verify: str, client_id: str | None, client_secret: str | None
) -> _Verifier:
    if not isinstance(verify_url, str) or not verify_url.startswith(("http://", "https://")):
        raise InputError(f"must be an http(s) URL, got {verify_url!r}", field="verify_url")
    if verify not in ("date", "iat"):
        raise InputError(f"must be 'date' or 'iat', got {verify!r}", field="verify")
    if verify == "iat" and not (client_id and client_secret):
        raise InputError(
            "verify='iat' needs client_id and client_secret (from the experiment's secrets)",
            field="client_secret",
        )
    return _Verifier(verify_url, verify, client_id, client_secret)


def wait_for_offset(
    verifier: _Verifier, wanted: float, tolerance: float, timeout: float, interval: float = 0.25
) -> float:
    """Poll until the target's clock is ``wanted`` ahead of ours (± tolerance); bounded."""
    deadline = time.monotonic() + timeout
    observed = verifier.observe()
    while abs(observed - wanted) > tolerance and time.monotonic() < deadline:
        time.sleep(interval)
        observed = verifier.observe()
    if abs(observed - wanted) > tolerance:
        raise CheckFailed(
            f"clock offset did not take effect: {verifier.url} is {observed:+.1f} s from our "
            f"clock after {timeout:g} s, wanted {wanted:+g} s (±{tolerance:g}); is the target "
            "running under libfaketime with this FAKETIME_TIMESTAMP_FILE and FAKETIME_NO_CACHE=1?"
        )
    return observed


# -- the Chaos Toolkit actions -----------------------------------------------------------------


def set_faketime_offset(
    timestamp_file: str,
    offset_seconds: float,
    verify_url: str,
    verify: str = "date",
    target_pid: int | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    tolerance_seconds: float = 2.0,
    verify_timeout: float = 15.0,
) -> dict[str, Any]:
    """Shift the clock of a target running under libfaketime by ``offset_seconds`` (negative:
    behind) and verify it: ``verify="date"`` reads the ``Date`` header of ``verify_url``;
    ``verify="iat"`` requests a client_credentials token from ``verify_url`` (a token
    endpoint) and reads its ``iat``. With ``target_pid`` (same host) the process is checked
    first: Go or static binaries and unsafe libfaketime settings are refused. Fails when the
    observed offset is not within ``tolerance_seconds`` after ``verify_timeout`` seconds."""
    verifier = _verifier(verify_url, verify, client_id, client_secret)
    if not tolerance_seconds > 0 or not 0 < verify_timeout <= 300:
        raise InputError("tolerance_seconds must be > 0 and verify_timeout in (0, 300]")
    warnings = check_target_process(int(target_pid), timestamp_file) if target_pid else []
    for warning in warnings:
        log.warning("faketime target: %s", warning)
    write_offset(timestamp_file, offset_seconds)
    log.info("faketime offset set to %s in %s", format_offset(offset_seconds), timestamp_file)
    observed = wait_for_offset(verifier, float(offset_seconds), tolerance_seconds, verify_timeout)
    return {
        "offset_seconds": float(offset_seconds),
        "observed_offset_seconds": round(observed, 3),
        "verified_by": verify,
        "timestamp_file": str(timestamp_file),
        "warnings": warnings,
    }


def clear_faketime_offset(
    timestamp_file: str,
    verify_url: str,
    verify: str = "date",
    client_id: str | None = None,
    client_secret: str | None = None,
    tolerance_seconds: float = 2.0,
    verify_timeout: float = 15.0,
) -> dict[str, Any]:
    """Rollback of ``set_faketime_offset``: offset back to zero, verified the same way."""
    return set_faketime_offset(
        timestamp_file,
        0,
        verify_url,
        verify=verify,
        client_id=client_id,
        client_secret=client_secret,
        tolerance_seconds=tolerance_seconds,
        verify_timeout=verify_timeout,
    )


# -- ``python -m tokenslo.chaos.faketime``: prepare a target's environment ---------------------


def main(argv: list[str] | None = None) -> int:
    """``env TIMESTAMP_FILE [--shim-dir D]``: print the exports; ``check PROGRAM``: fakeable?"""
    import argparse
    import sys

    from tokenslo.errors import TokensloError

    parser = argparse.ArgumentParser(prog="python -m tokenslo.chaos.faketime")
    sub = parser.add_subparsers(dest="cmd", required=True)
    env_cmd = sub.add_parser("env", help="print the shell exports for a target")
    env_cmd.add_argument("timestamp_file")
    env_cmd.add_argument("--shim-dir", default=".tokenslo/faketime")
    check_cmd = sub.add_parser("check", help="can libfaketime shift this program's clock?")
    check_cmd.add_argument("program")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "check":
            info = check_fakeable(args.program)
            print(f"{info.path}: dynamically linked ({info.interpreter}); libfaketime applies")
            return 0
        ts = Path(args.timestamp_file)
        if not ts.exists():
            write_offset(ts, 0)
        env = recommended_env(ts, build_monotonic_shim(args.shim_dir))
        for key, value in env.items():
            print(f"export {key}={value}")
        return 0
    except TokensloError as exc:
        print(f"tokenslo faketime: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
