"""``python -m tokenslo.lab.idp --config FILE.yaml``: run the lab IdP under uvicorn.

The admin secret comes from ``--admin-secret-file`` (what ``lab up`` passes: a file
in the state dir, never the environment, which child processes inherit) or else
``TOKENSLO_ADMIN_SECRET``; one is required, because the admin API can inject
faults and rotate keys, so it never runs unprotected. Logs go to stderr;
SIGTERM stops uvicorn gracefully.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import uvicorn

from tokenslo.errors import TokensloError
from tokenslo.lab.admin_secret import read_admin_secret
from tokenslo.lab.idp.app import create_app
from tokenslo.lab.idp.config import load_idp_config
from tokenslo.lab.serving import log_to_stderr, server_options, service_parser


def main(argv: list[str] | None = None) -> int:
    parser = service_parser("python -m tokenslo.lab.idp", "IdP config YAML", __doc__)
    args = parser.parse_args(argv)
    try:
        admin_secret = read_admin_secret(args.admin_secret_file)
    except TokensloError as exc:
        print(f"tokenslo idp: {exc}", file=sys.stderr)
        return exc.exit_code
    log_to_stderr(args.log_level)
    try:
        config = load_idp_config(args.config)
        app = create_app(config, admin_secret=admin_secret)
    except TokensloError as exc:
        print(f"tokenslo idp: {exc}", file=sys.stderr)
        return exc.exit_code
    log = logging.getLogger("tokenslo.lab.idp")
    log.info(
        "idp starting issuer=%s alg=%s kid=%s",
        config.effective_issuer,
        config.signing_alg,
        app.state.idp.keys.current.kid,
    )
    # uvicorn shuts down gracefully on SIGTERM and then re-raises it to the previous
    # handler; make that handler a clean exit so the orchestrator sees status 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            app,
            host=config.host,
            port=config.port,
            workers=1,
            **server_options(),
            access_log=False,  # one line per event comes from our own loggers
            log_level="warning" if args.log_level != "debug" else "info",
            timeout_graceful_shutdown=5,
        )
    finally:
        log.info("idp stopped")
    return 0


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
