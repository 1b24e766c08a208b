"""``tokenslo scan PATH...``: tokens and secrets leaked into files (CI logs, artifacts).

Exit codes: 0 nothing found, 1 findings, 2 bad input (a path that does not exist).
Output names each secret by a fingerprint only, never by its value.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from tokenslo.errors import EXIT_FAILED, EXIT_OK
from tokenslo.scan.detect import scan_texts
from tokenslo.scan.files import (
    DEFAULT_MAX_BYTES,
    Skipped,
    check_paths,
    read_patterns,
    read_texts,
)

SUMMARY = "find bearer tokens, JWTs and other secrets leaked into files (CI logs)"
DESCRIPTION = (
    "Find bearer tokens, JWTs, OAuth client secrets and the other secrets detect-secrets "
    "knows in files (directories recursively); say whether each JWT is still valid by its "
    "exp. Secrets are named by a SHA-256 fingerprint, never shown (docs/scan.md)."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("scan", help=SUMMARY, description=DESCRIPTION)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    p.add_argument(
        "--max-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BYTES,
        metavar="N",
        help=f"skip (with a note) files larger than N bytes (default {DEFAULT_MAX_BYTES})",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="do not scan files whose path below a PATH directory matches GLOB ('*' crosses "
        "'/'); repeatable",
    )
    p.add_argument(
        "--exclude-from",
        metavar="FILE",
        help="read --exclude patterns from FILE, one per line, '#' comments",
    )
    p.set_defaults(handler=run_scan)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def run_scan(args: argparse.Namespace) -> int:
    check_paths(args.paths)
    exclude = list(args.exclude)
    if args.exclude_from:
        exclude += read_patterns(args.exclude_from)
    skipped: list[Skipped] = []
    texts = read_texts(args.paths, args.max_bytes, skipped, exclude)
    findings = scan_texts(texts, datetime.now(UTC))
    for skip in skipped:
        print(f"tokenslo scan: skipped {skip.file}: {skip.reason}", file=sys.stderr)
    if args.json:
        document = {
            "findings": [f.as_json() for f in findings],
            "skipped": [{"file": s.file, "reason": s.reason} for s in skipped],
        }
        print(json.dumps(document, indent=2))
    else:
        for finding in findings:
            print(finding.text())
    return EXIT_FAILED if findings else EXIT_OK
