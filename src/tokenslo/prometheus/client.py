"""Query a PromQL backend: Prometheus and VictoriaMetrics (both run by the tests).

A thin edge over ``prometheus_api_client.PrometheusConnect`` that:

* sends queries as a form-encoded POST body, so long batched queries are not
  limited by URL length (PrometheusConnect puts POST parameters in the URL);
* fails fast when the backend is down (one retry, no backoff) instead of the
  library's default retry-with-backoff, so "Prometheus down" shows in ~1 s;
* turns failures into the exit-code errors of tokenslo.errors: unreachable or 5xx →
  ``UnavailableError``; a query Prometheus rejects (400/422) → ``InputError``
  naming the query;
* counts HTTP queries (``queries``) so callers and tests can check batching;
* sends many range queries a few at a time (``query_ranges``): Prometheus evaluates
  each query on one core, and small queries cost it less than one big ``or`` of them.

Besides PromQL it reads what Prometheus runs — active alerts, loaded rules, its
configuration, scrape targets and Alertmanagers — with the same fail-fast retry
and error mapping, so an unreachable or wrong URL reads the same everywhere.

Every other component (evaluator, lab, chaos probes, game days, reports,
``slo validate --prometheus``) reaches Prometheus' HTTP API through this class.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from tokenslo.errors import InputError, UnavailableError
from tokenslo.loopback import is_loopback

QUERY_EXCERPT = 200  # characters of a rejected query quoted in the error message
PARALLEL_QUERIES = 4  # range queries in flight at once (``query_ranges``)

# expr, start, end, step of one range query
RangeRequest = tuple[str, float, float, float]


class _FormPostSession(requests.Session):
    """Moves POST parameters into the form body and remembers the last response.

    PrometheusConnect passes parameters as ``params`` (the URL) even for POST;
    the Prometheus API accepts them form-encoded in the body, which has no
    practical length limit. The last response lets us read the API's JSON error
    instead of parsing the library's exception text.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_response: requests.Response | None = None

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.last_response = None
        if method.upper() == "POST" and kwargs.get("params") and kwargs.get("data") is None:
            kwargs["data"], kwargs["params"] = kwargs["params"], None
        response = super().request(method, url, **kwargs)
        self.last_response = response
        return response


def _fail_fast_retry() -> Retry:
    """One retry on connection errors, no backoff, no retry on HTTP status."""
    return Retry(total=1, connect=1, read=0, status=0, backoff_factor=0, status_forcelist=())


class PromClient:
    """Instant and range PromQL queries against ``url`` (e.g. ``http://127.0.0.1:9090``)."""

    def __init__(self, url: str, timeout: float = 10):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(
                f"not an http(s) URL: {url!r} (e.g. http://127.0.0.1:9090)", field="--prometheus"
            )
        self.url = url.rstrip("/")
        self.shown_url = _redact(self.url)  # for messages: never print credentials
        self.timeout = timeout
        self.queries = 0
        self._transport_error: Exception | None = None
        self._session = _FormPostSession()
        if is_loopback(parts.hostname):
            # gzip only costs CPU at both ends on one machine (a month of 5m counts:
            # ~300 MB of JSON, a quarter of Prometheus's time on it spent compressing)
            self._session.headers["Accept-Encoding"] = "identity"
        self._conn = PrometheusConnect(
            url=self.url,
            retry=_fail_fast_retry(),
            session=self._session,
            timeout=timeout,
            method="POST",
        )

    def query(self, expr: str, at: float) -> list[dict]:
        """Instant query evaluated at unix time ``at``; the vector result.

        A scalar result is returned as one sample without labels.
        """
        result = self._call(expr, lambda: self._conn.custom_query(expr, params={"time": _ts(at)}))
        if result and not isinstance(result[0], dict):  # scalar: [ts, "value"]
            return [{"metric": {}, "value": result}]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """Range query; a matrix: ``[{"metric": {...}, "values": [[ts, "v"], ...]}]``.

        start/end go as exact parameters because the library rounds its
        datetime arguments to whole seconds. ``nocache=1`` keeps the grid where we
        asked for it: VictoriaMetrics otherwise rounds start and end down to a multiple
        of step (for its result cache) once a range has more than about 50 points, and
        every caller looks its steps up at ``start + i·step``. Prometheus ignores the
        parameter.
        """
        params = {"start": _ts(start), "end": _ts(end), "step": _ts(step), "nocache": "1"}
        return self._call(
            expr,
            lambda: self._conn.custom_query_range(
                expr,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=params["step"],
                params=params,
            ),
        )

    def query_ranges(
        self, ranges: Iterable[RangeRequest], workers: int = PARALLEL_QUERIES
    ) -> Iterator[list[dict]]:
        """``query_range`` of each request, ``workers`` in flight at once; results in
        request order. At most ``2 × workers`` results wait to be consumed, so a long
        list of large answers never sits in memory at once. Each worker thread has its
        own connection (a requests session is not meant to be shared across threads).
        """
        local = threading.local()
        workers_clients: list[PromClient] = []
        lock = threading.Lock()

        def send(request: RangeRequest) -> list[dict]:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = PromClient(self.url, self.timeout)
                with lock:
                    workers_clients.append(client)
            try:
                return client.query_range(*request)
            finally:
                self._transport_error = client.transport_error

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="promql")
        pending: deque[Future[list[dict]]] = deque()
        try:
            for request in ranges:
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
                pending.append(pool.submit(send, request))
                self.queries += 1
            while pending:
                yield pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for client in workers_clients:
                client.close()

    # -- what Prometheus runs (not PromQL; not counted in ``queries``) -------------------

    def alerts(self) -> list[dict]:
        """Pending and firing alerts (``/api/v1/alerts``), each with ``labels``, ``state``
        and ``activeAt``."""
        return self._listed(self._api("/api/v1/alerts"), "alerts")

    def rules(self, type: str | None = None) -> list[dict]:
        """Loaded rule groups (``/api/v1/rules``), each with its ``rules``; ``type``
        ``"alert"`` or ``"record"`` keeps only those rules."""
        return self._listed(self._api("/api/v1/rules", type=type), "groups")

    def config_yaml(self) -> str:
        """The configuration Prometheus runs, as YAML text (``/api/v1/status/config``)."""
        data = self._api("/api/v1/status/config")
        if not isinstance(data, dict) or not isinstance(data.get("yaml"), str):
            raise self._not_api()
        return data["yaml"]

    def version(self) -> str:
        """The server's version (``/api/v1/status/buildinfo``), e.g. ``2.42.0``."""
        data = self._api("/api/v1/status/buildinfo")
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise self._not_api()
        return data["version"]

    def targets(self) -> list[dict]:
        """Active scrape targets (``/api/v1/targets``), each with ``labels`` and ``health``."""
        return self._listed(self._api("/api/v1/targets"), "activeTargets")

    def alertmanagers(self) -> list[dict]:
        """The Alertmanagers Prometheus sends to (``/api/v1/alertmanagers``); empty until
        its service discovery has run."""
        return self._listed(self._api("/api/v1/alertmanagers"), "activeAlertmanagers")

    @property
    def transport_error(self) -> Exception | None:
        """The connection error or timeout of the last request, if that is how it failed:
        lets a caller tell "no answer at all" from an answer it did not like."""
        return self._transport_error

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PromClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _api(self, path: str, **params: str | None) -> Any:
        """GET ``path`` of the HTTP API; the ``data`` of a successful answer."""
        wanted = {k: v for k, v in params.items() if v is not None}

        def send() -> Any:
            response = self._session.get(self.url + path, params=wanted, timeout=self.timeout)
            if response.status_code != 200:
                raise PrometheusApiClientException(f"HTTP {response.status_code}")
            body = response.json()
            if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
                raise ValueError("not the API's envelope")
            return body["data"]

        return self._send(path, send)

    def _listed(self, data: Any, key: str) -> list[dict]:
        """``data[key]``, a list, as the API documents it; anything else is not Prometheus.

        ``null`` is an empty list: vmalert answers ``{"alerts": null}`` while nothing is
        pending or firing (Prometheus sends ``[]``)."""
        if isinstance(data, dict) and key in data and data[key] is None:
            return []
        items = data.get(key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise self._not_api()
        return items

    def _not_api(self) -> UnavailableError:
        return UnavailableError(
            f"Prometheus at {self.shown_url} returned a non-API response; is the URL right?"
        )

    def _call(self, expr: str, send) -> list:
        self.queries += 1
        return self._send(expr, send)

    def _send(self, expr: str, send) -> Any:
        """Run one request; failures become the exit-code errors (module docstring).
        ``expr`` is the query (or API path) a rejection names."""
        self._transport_error = None
        try:
            return send()
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._transport_error = exc
            raise UnavailableError(
                f"Prometheus at {self.shown_url} unreachable: {_short(exc)}"
            ) from None
        except PrometheusApiClientException:
            raise self._http_error(expr) from None
        except (ValueError, KeyError, TypeError):  # 200 but not the API's JSON (also
            # requests' JSONDecodeError, a ValueError): a wrong URL, e.g. a UI in front
            raise self._not_api() from None
        except requests.RequestException as exc:
            raise UnavailableError(
                f"Prometheus at {self.shown_url} failed: {_short(exc)}"
            ) from None

    def _http_error(self, expr: str) -> Exception:
        response = self._session.last_response
        status = response.status_code if response is not None else 0
        error_type, message = _api_error(response)
        if status in (400, 422):
            return InputError(
                f"Prometheus rejected the query ({error_type or status}: {message}): "
                f"{expr[:QUERY_EXCERPT]}"
            )
        return UnavailableError(
            f"Prometheus at {self.shown_url} answered HTTP {status}"
            + (f" ({error_type}: {message})" if message else "")
        )


def _redact(url: str) -> str:
    """``http://user:secret@host`` → ``http://***@host``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _api_error(response: requests.Response | None) -> tuple[str, str]:
    """``(errorType, error)`` from the API's JSON error envelope, if any."""
    if response is None:
        return "", ""
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:QUERY_EXCERPT].strip()
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("errorType", "")), str(body.get("error", ""))


def _ts(value: float) -> str:
    """Unix seconds with millisecond precision, as the API accepts them."""
    if not math.isfinite(value):
        raise InputError(f"not a finite time: {value}")
    return f"{value:.3f}"


def _short(exc: Exception) -> str:
    """The innermost reason of a requests error, without the URL-laden wrapping."""
    text = str(exc)
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.strip("()'\" ")[:200]


def sample_value(raw: Any) -> float | None:
    """A sample's string value as float; None for NaN (no meaningful value)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
