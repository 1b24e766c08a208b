"""One way to put an untrusted value into a lab log line.

Log lines are one event each, ``key=value`` separated by spaces, and readers
(people, ``grep``, the log-scan tests) trust that shape. A value from a request
(a client_id, a kid, an alert label) may hold a newline, a carriage return or
an ANSI escape that would forge a second line or rewrite the terminal; every
such value goes through ``clean`` before it reaches a logger.
"""

from __future__ import annotations

import json

MAX_LOGGED_CHARS = 200


def clean(value: object, limit: int = MAX_LOGGED_CHARS) -> str:
    """``value`` as one printable ASCII line: controls, quotes and non-ASCII escaped, truncated.

    JSON string escaping is used because it is reversible and familiar: ``\\n``,
    ``\\u001b``, ``\\"``. Truncation happens before escaping, so the result is
    bounded (at most six characters per input character plus the marker).
    """
    text = str(value)
    truncated = len(text) > limit
    escaped = json.dumps(text[:limit], ensure_ascii=True)[1:-1]
    return escaped + ("...(truncated)" if truncated else "")
