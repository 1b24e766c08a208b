"""Stop a run early when its failures are ones no amount of load explains.

A wrong client secret answers every token request with ``401 invalid_client``; an
introspection endpoint that refuses JWTs answers ``400 unsupported_token_type``. Load
changes nothing about that, so running for the full duration only floods the target
and the logs. When the first ``FIRST`` responses of a request name all carry such an
error (``protocol.UNEXPLAINED_BY_LOAD``), the run stops and says why in one line; the
gate then judges what was collected (a certain breach fails, see ``gate``).

``Watch`` is pure. ``install`` wires it to Locust: every process watches its own
requests; a worker tells the master with a custom message, and the master (or a lone
process) quits the run from its own greenlet — never from the user greenlet whose
request tripped it, which quitting kills.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from tokenslo.load.protocol import UNEXPLAINED_BY_LOAD, oauth_error
from tokenslo.load.recorder import error_text

FIRST = 20  # responses of one request name that must all be such an error
MESSAGE = "tokenslo_stop"  # Locust custom message: worker → master
log = logging.getLogger("tokenslo.load")


class Watch:
    """Trips once, when the first ``first`` responses of a name are all unexplained errors."""

    def __init__(self, first: int = FIRST):
        self.first = first
        self.seen: dict[str, Counter[str]] = {}
        self.cleared: set[str] = set()  # names that answered something else: never trip
        self.tripped = False

    def observe(self, name: str, error: str | None) -> str | None:
        """The reason to stop, the one time it becomes true; else None."""
        if self.tripped or name in self.cleared:
            return None
        if error is None or oauth_error(error) not in UNEXPLAINED_BY_LOAD:
            self.cleared.add(name)
            self.seen.pop(name, None)
            return None
        errors = self.seen.setdefault(name, Counter())
        errors[error] += 1
        if errors.total() < self.first:
            return None
        self.tripped = True
        found = ", ".join(f"{e} ×{n}" for e, n in errors.most_common())
        return (
            f"stopped early: the first {self.first} {name} responses were all {found}, "
            "which no amount of load explains (check the client's credentials, grant types "
            "and the provider's settings)"
        )


def stop_run(environment: Any, reason: str) -> None:
    """Stop the whole run with ``reason`` from any process: a worker asks the master."""
    from locust.runners import WorkerRunner

    if isinstance(environment.runner, WorkerRunner):
        # locust annotates the payload as a dict but sends any msgpack value; ours is the text.
        environment.runner.send_message(MESSAGE, reason)  # type: ignore[arg-type]
    elif environment.runner is not None:
        _stop_here(environment, reason)


def _stop_here(environment: Any, reason: str) -> None:
    """Master or lone process: record why (once), then quit from a greenlet of its own."""
    import gevent

    recorder = environment.tokenslo_recorder
    if recorder.stopped:
        return
    recorder.stopped = reason
    log.error("%s", reason)
    headless = bool(getattr(environment.parsed_options, "headless", True))
    gevent.spawn(environment.runner.quit if headless else environment.runner.stop)


def install(environment: Any) -> Watch:
    """Watch every request of this process (after ``recorder.install``); a trip stops the run."""
    from locust.runners import WorkerRunner

    watch = Watch()
    runner = environment.runner
    if runner is not None and not isinstance(runner, WorkerRunner):
        runner.register_message(
            MESSAGE, lambda environment, msg, **_kw: _stop_here(environment, str(msg.data))
        )

    @environment.events.request.add_listener
    def on_request(name, exception=None, **_kw):
        reason = watch.observe(name, error_text(exception))
        if reason is not None:
            stop_run(environment, reason)

    return watch
