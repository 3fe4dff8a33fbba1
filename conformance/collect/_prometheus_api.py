"""A small client for the Prometheus HTTP API (``/api/v1``) and the waits built on it.

Only what the checks read is covered: readiness, build info, active targets,
instant queries, series, label values, TSDB status, alerts and rules. Every
response uses Prometheus's envelope (``status``, ``data``, ``errorType``,
``error``); ``status: error`` becomes a :class:`HarnessError` quoting
Prometheus's errorType and error, because a query the harness wrote that
Prometheus rejects is our problem, not the service's.

Query results are normalised to plain dicts with float values (Prometheus sends
sample values as strings so that ``NaN`` and ``+Inf`` survive JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from conformance._exceptions import HarnessError
from conformance._wait import wait_until

__all__ = ["PrometheusClient", "scraped_since", "wait_for_series", "wait_for_target_up"]

QueryTime = float | datetime

_Params = Sequence[tuple[str, str]] | Mapping[str, str] | None


class PrometheusClient:
    """Read-only access to one Prometheus server.

    Pass ``client`` to control transport, proxies or auth (tests pass an
    ``httpx.Client`` over ``httpx.MockTransport``); otherwise the instance owns
    a client and :meth:`close` (or ``with``) releases it.
    """

    def __init__(self, base_url: str, *, client: httpx.Client | None = None, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"<PrometheusClient {self.base_url}>"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def ready(self) -> bool:
        """``True`` once ``/-/ready`` answers 200; ``False`` while starting or unreachable."""
        try:
            response = self._client.get(f"{self.base_url}/-/ready", timeout=self.timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def build_info(self) -> dict[str, Any]:
        """``version``, ``revision``, ``goVersion``... of the server."""
        return _as_dict(self._get("/api/v1/status/buildinfo"), "/api/v1/status/buildinfo")

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets: ``labels``, ``scrapePool``, ``scrapeUrl``, ``health``, ``lastError``..."""
        data = _as_dict(self._get("/api/v1/targets", {"state": "active"}), "/api/v1/targets")
        return list(data.get("activeTargets") or [])

    def query(self, expr: str, time: QueryTime | None = None) -> list[dict[str, Any]]:
        """Evaluate an instant query.

        Vector and scalar results become ``{"metric": {...}, "timestamp": t,
        "value": float}`` (a scalar has an empty ``metric``); a matrix (a range
        selector such as ``x[1m]``) becomes ``{"metric": {...}, "values":
        [(t, float), ...]}``; a string result keeps its string ``value``.
        """
        params = {"query": expr}
        if time is not None:
            params["time"] = _format_time(time)
        data = _as_dict(self._get("/api/v1/query", params), "/api/v1/query")
        return _normalise_result(data.get("resultType"), data.get("result"))

    def series(
        self, match: Sequence[str], *, start: QueryTime | None = None, end: QueryTime | None = None
    ) -> list[dict[str, str]]:
        """Label sets of the series matching any of the ``match`` selectors."""
        if isinstance(match, str) or not match:
            raise ValueError("series() needs a non-empty list of series selectors")
        params: list[tuple[str, str]] = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", _format_time(start)))
        if end is not None:
            params.append(("end", _format_time(end)))
        return list(_as_list(self._get("/api/v1/series", params), "/api/v1/series"))

    def label_values(self, label: str) -> list[str]:
        """Every value ``label`` has in the TSDB (``__name__`` lists metric names)."""
        path = f"/api/v1/label/{quote(label, safe='')}/values"
        return [str(v) for v in _as_list(self._get(path), path)]

    def tsdb_status(self) -> dict[str, Any]:
        """Cardinality statistics: ``headStats``, ``seriesCountByMetricName``..."""
        return _as_dict(self._get("/api/v1/status/tsdb"), "/api/v1/status/tsdb")

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts: ``labels``, ``annotations``, ``state``, ``activeAt``, ``value``."""
        data = _as_dict(self._get("/api/v1/alerts"), "/api/v1/alerts")
        return list(data.get("alerts") or [])

    def rules(self, kind: Literal["alert", "record"] | None = None) -> list[dict[str, Any]]:
        """Loaded rules, flattened: each rule dict plus its ``group`` name and rule ``file``."""
        params = {"type": kind} if kind else None
        data = _as_dict(self._get("/api/v1/rules", params), "/api/v1/rules")
        flat: list[dict[str, Any]] = []
        for group in data.get("groups") or []:
            for rule in group.get("rules") or []:
                flat.append({**rule, "group": group.get("name", ""), "file": group.get("file", "")})
        return flat

    def _get(self, path: str, params: _Params = None) -> Any:
        url = f"{self.base_url}{path}"
        pairs = params.items() if isinstance(params, Mapping) else params or ()
        query = httpx.QueryParams([(key, value) for key, value in pairs])
        try:
            response = self._client.get(url, params=query, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise HarnessError(
                f"Prometheus API {url} unreachable: {type(exc).__name__}: {exc}",
                hint="is Prometheus running? LocalPrometheus.start() waits for it to be ready",
            ) from exc
        try:
            envelope = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HarnessError(
                f"Prometheus API {path}: HTTP {response.status_code}, not a JSON response: "
                f"{response.text[:200]!r}"
            ) from None
        if not isinstance(envelope, dict) or "status" not in envelope:
            raise HarnessError(f"Prometheus API {path}: HTTP {response.status_code}, no API envelope")
        if envelope["status"] != "success":
            raise HarnessError(
                f"Prometheus API {path} failed (HTTP {response.status_code}): "
                f"{envelope.get('errorType', 'unknown')}: {envelope.get('error', '')}"
            )
        return envelope.get("data")


def wait_for_target_up(
    client: PrometheusClient, job: str, *, timeout: float, since: datetime | None = None
) -> dict[str, Any]:
    """Wait until every active target of ``job`` is up after a scrape that began after ``since``.

    ``since`` defaults to the moment of the call, so a target still marked up
    from before a service restart does not count. Returns the first target.
    The timeout message shows the last health and ``lastError`` seen (e.g.
    ``connection refused``), which is usually the whole diagnosis.
    """
    since = since if since is not None else datetime.now(UTC)

    def probe() -> tuple[dict[str, Any] | None, str]:
        targets = client.targets()
        mine = [t for t in targets if t.get("labels", {}).get("job") == job or t.get("scrapePool") == job]
        if not mine:
            pools = sorted({str(t.get("scrapePool", "?")) for t in targets})
            return None, f"no active target for job {job!r} yet (jobs: {', '.join(pools) or 'none'})"
        for target in mine:
            health = target.get("health")
            last = _parse_rfc3339(str(target.get("lastScrape", "")))
            if health != "up" or last is None or last < since:
                return None, (
                    f"{target.get('scrapeUrl')} health={health!r} lastError={target.get('lastError', '')!r} "
                    f"lastScrape={target.get('lastScrape')!r}"
                )
        return mine[0], "up"

    return wait_until(
        probe,
        awaited=f"Prometheus target job={job!r} to be up",
        timeout=timeout,
        hint="check that the service listens on the scrape URL and serves metrics at the configured path",
    )


def scraped_since(client: PrometheusClient, job: str, since: datetime) -> bool:
    """Whether Prometheus has scraped ``job`` in a scrape that began after ``since`` (no wait)."""
    for target in client.targets():
        if target.get("labels", {}).get("job") == job or target.get("scrapePool") == job:
            last = _parse_rfc3339(str(target.get("lastScrape", "")))
            return last is not None and last > since
    return False


def wait_for_series(
    client: PrometheusClient, expr: str, *, timeout: float, min_samples: int = 1
) -> list[dict[str, Any]]:
    """Wait until the instant query ``expr`` returns at least ``min_samples`` results; return them.

    Query errors (bad PromQL) propagate at once: waiting will not fix them.
    """

    def probe() -> tuple[list[dict[str, Any]] | None, str]:
        result = client.query(expr)
        seen = f"{len(result)} result(s)"
        if result:
            seen += f", first: {result[0]}"
        return (result if len(result) >= min_samples else None), seen

    return wait_until(
        probe,
        awaited=f"query {expr!r} to return at least {min_samples} result(s)",
        timeout=timeout,
        hint="the metric may not be exposed yet, or the target is not being scraped (see /api/v1/targets)",
    )


def _format_time(t: QueryTime) -> str:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError("query times must be timezone-aware")
        return t.isoformat()
    return repr(float(t))


def _parse_rfc3339(value: str) -> datetime | None:
    """Prometheus's timestamps (nanoseconds, ``Z`` or offset); ``None`` if unparsable or never set."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.year <= 1:
        return None
    return parsed


def _sample(metric: Mapping[str, str], point: Sequence[Any]) -> dict[str, Any]:
    return {"metric": dict(metric), "timestamp": float(point[0]), "value": float(point[1])}


def _normalise_result(result_type: object, result: Any) -> list[dict[str, Any]]:
    if result_type == "vector":
        return [_sample(item.get("metric", {}), item["value"]) for item in result or []]
    if result_type == "scalar":
        return [_sample({}, result)]
    if result_type == "matrix":
        return [
            {
                "metric": dict(item.get("metric", {})),
                "values": [(float(t), float(v)) for t, v in item.get("values", [])],
            }
            for item in result or []
        ]
    if result_type == "string":
        return [{"metric": {}, "timestamp": float(result[0]), "value": str(result[1])}]
    raise HarnessError(f"Prometheus API /api/v1/query: unknown resultType {result_type!r}")


def _as_dict(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HarnessError(f"Prometheus API {path}: expected an object in data, got {type(data).__name__}")
    return data


def _as_list(data: Any, path: str) -> list[Any]:
    if not isinstance(data, list):
        raise HarnessError(f"Prometheus API {path}: expected a list in data, got {type(data).__name__}")
    return data
