"""``python -m tokenslo.lab.gateway --config FILE.yaml`` — the process the orchestrator starts.

Reads the admin secret from ``--admin-secret-file`` (what ``lab up`` passes)
or else ``TOKENSLO_ADMIN_SECRET`` (refuses to start without one), logs to
stderr one line per event, serves on the configured loopback address with one
uvicorn worker and exits cleanly on SIGTERM.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn

from tokenslo.errors import TokensloError
from tokenslo.lab.admin_secret import read_admin_secret
from tokenslo.lab.gateway.app import create_app
from tokenslo.lab.gateway.config import load_credentials, load_gateway_config
from tokenslo.lab.serving import log_to_stderr, server_options, service_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = service_parser("python -m tokenslo.lab.gateway", "gateway YAML config")
    args = parser.parse_args(argv)
    log_to_stderr(args.log_level)
    try:
        secret = read_admin_secret(args.admin_secret_file)
        config = load_gateway_config(args.config)
        credentials = None
        if config.credentials_file:
            credentials = load_credentials(config.credentials_file, config.credentials_client_id)
    except TokensloError as exc:
        print(f"tokenslo gateway: {exc}", file=sys.stderr)
        return exc.exit_code
    app = create_app(config, admin_secret=secret, credentials=credentials)
    # access_log off: it would print request URIs, and a query string may hold a token.
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        workers=1,
        **server_options(),
        access_log=False,
        log_config=None,
        log_level=args.log_level,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
