"""``tokenslo slo validate | schema | import-openslo | export-openslo``: the spec commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tokenslo.errors import EXIT_FAILED, EXIT_OK, InputError
from tokenslo.files import write_atomically
from tokenslo.spec.loader import load_result


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate``, ``schema``, ``import-openslo`` and ``export-openslo`` to ``slo``."""
    validate = subparsers.add_parser(
        "validate",
        help="check SLO files (schema, PromQL, likely mistakes)",
        description="Check tokenslo v1 SLO files. Exit 0 when valid (warnings are printed), "
        "2 on the first error, 3 when --prometheus is unreachable.",
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="SLO files or directories")
    validate.add_argument("--strict", action="store_true", help="treat warnings as errors")
    validate.add_argument(
        "--prometheus",
        metavar="URL",
        help="also check latency thresholds against the histogram buckets this Prometheus has",
    )
    validate.set_defaults(handler=validate_command)

    schema = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of SLO files",
        description="Print the JSON Schema (Draft 2020-12) that `slo validate` enforces; "
        "point your editor's YAML language server at it.",
    )
    schema.set_defaults(handler=schema_command)

    openslo = subparsers.add_parser(
        "import-openslo",
        help="convert an OpenSLO v1 file to tokenslo v1 YAML",
        description="Convert OpenSLO v1 SLO/SLI/DataSource documents (Prometheus sources) to "
        "tokenslo v1. Objects tokenslo cannot express are skipped, each named on stderr as "
        "FILE:LINE: kind NAME: skipped: reason. Exit 0 when all SLOs were imported, 1 when "
        "any was skipped (the rest is still written), 2 on invalid input (nothing written).",
    )
    openslo.add_argument("file", metavar="FILE")
    openslo.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    openslo.set_defaults(handler=import_openslo_command)

    export = subparsers.add_parser(
        "export-openslo",
        help="convert tokenslo v1 SLO files to OpenSLO v1",
        description="Write each SLO as an OpenSLO v1 kind: SLO (inline indicator, Prometheus "
        "source). alerting and loadtest go into tokenslo/* annotations, so import-openslo "
        "gives back the same SLOs. Exit 2 (nothing written) when an SLO cannot be expressed.",
    )
    export.add_argument("paths", nargs="+", metavar="PATH", help="SLO files or directories")
    export.add_argument("-o", "--output", metavar="OUT", help="write here instead of stdout")
    export.set_defaults(handler=export_openslo_command)


def validate_command(args: argparse.Namespace) -> int:
    result = load_result(args.paths)
    if args.prometheus:
        from tokenslo.prometheus.buckets import fetch_buckets
        from tokenslo.spec.thresholds import check_latency_buckets

        url = args.prometheus
        check_latency_buckets(result, url, lambda sli: fetch_buckets(url, sli))
    for finding in result.findings:
        print(finding.format("warning"), file=sys.stderr)
    if not args.prometheus:
        from tokenslo.spec.thresholds import unchecked_thresholds

        for note in unchecked_thresholds(result):
            print(note.format("note"), file=sys.stderr)
    if args.strict and result.findings:
        raise InputError(f"{len(result.findings)} warning(s) and --strict is set")
    files = len(result.files)
    print(f"OK: {len(result.slos)} SLOs in {files} file{'s' if files != 1 else ''}")
    return EXIT_OK


def schema_command(_args: argparse.Namespace) -> int:
    from tokenslo.spec.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def import_openslo_command(args: argparse.Namespace) -> int:
    from tokenslo.spec.openslo import import_openslo
    from tokenslo.spec.writer import dump_v1

    result = import_openslo(args.file)
    for note in sorted(result.ignored + result.skipped, key=lambda s: s.line):
        print(note.format(), file=sys.stderr)
    code = EXIT_FAILED if result.skipped else EXIT_OK
    if not result.slos:
        print(f"{args.file}: no SLO imported, nothing written", file=sys.stderr)
        return code
    header = f"Imported from {args.file} by `tokenslo slo import-openslo`."
    _emit(args.output, dump_v1(result.slos, header=header), len(result.slos))
    if result.skipped:
        print(f"{len(result.skipped)} SLO(s) skipped", file=sys.stderr)
    return code


def export_openslo_command(args: argparse.Namespace) -> int:
    from tokenslo.spec.loader import load_paths
    from tokenslo.spec.openslo_export import dump_openslo

    slos = load_paths(args.paths)
    sources = " ".join(args.paths)
    text = dump_openslo(slos, header=f"Exported from {sources} by `tokenslo slo export-openslo`.")
    _emit(args.output, text, len(slos))
    return EXIT_OK


def _emit(output: str | None, text: str, count: int) -> None:
    """Write ``text`` atomically to ``output``, or to stdout when there is none."""
    if output:
        write_atomic(Path(output), text)
        print(f"wrote {count} SLOs to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def write_atomic(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and rename, so readers never see half."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError("output directory does not exist", file=str(path))
    # 0600, as this command has always written it (rules/dashboards follow the umask).
    write_atomically(path, text, mode=0o600)
