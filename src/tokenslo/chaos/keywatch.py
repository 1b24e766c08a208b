"""Expiry for an unpublished signing key: ``python -m tokenslo.chaos.keywatch``.

The IdP keeps an unpublished key (failure F3) until someone publishes it; it has
no server-side expiry like faults do. So ``rotate_signing_key(publish=False,
expires_in=N)`` starts this detached, bounded watcher: after N seconds it
publishes the key if it is still the current, unpublished one. A rollback
publishes earlier and stops the watcher by PID; a SIGKILLed experiment still
gets its key published at expiry. The admin secret is read from its file.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

MAX_WAIT = 3600.0


def publish_if_pending(idp_admin_url: str, secret: str, kid: str) -> bool:
    """Publish the current key when it is ``kid`` and not yet in the JWKS."""
    import requests

    from tokenslo.lab.faults.client import LabAdmin

    try:
        jwks = requests.get(idp_admin_url.rstrip("/") + "/jwks", timeout=5).json()
        published = {k.get("kid") for k in jwks.get("keys", []) if isinstance(k, dict)}
    except (requests.RequestException, ValueError, AttributeError):
        published = set()  # cannot tell: publishing the current key again is harmless
    if kid in published:
        return False
    state = LabAdmin(idp_admin_url, secret).publish_key()
    return state.get("current_kid") == kid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tokenslo.chaos.keywatch")
    parser.add_argument("--idp", required=True, help="IdP base URL (its /admin API)")
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--kid", required=True)
    parser.add_argument("--after", type=float, required=True)
    args = parser.parse_args(argv)
    if not 0 < args.after <= MAX_WAIT:
        parser.error(f"--after must be in (0, {MAX_WAIT:g}]")
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    deadline = time.monotonic() + args.after
    while not stop and time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    if stop:
        return 0
    secret = args.secret_file.read_text(encoding="utf-8").strip()
    try:
        publish_if_pending(args.idp, secret, args.kid)
    except Exception as exc:  # noqa: BLE001 - report in one line, never the secret
        print(f"keywatch: publishing {args.kid} failed: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
