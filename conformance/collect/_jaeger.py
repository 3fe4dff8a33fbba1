"""Reading spans from a real Jaeger (every mode): the query service's HTTP APIs.

Two read APIs, as Jaeger documents them (jaegertracing.io, "APIs" → "Trace
retrieval APIs"; IDL ``jaeger-idl/proto/api_v3/query_service.proto`` and its
OpenAPI file):

* ``GET /api/v3/traces/{trace_id}`` — *stable*, "OTLP-based JSON over HTTP":
  the body is OTLP ``TracesData`` JSON (``resourceSpans`` …, ids in hex),
  wrapped in a ``{"result": …}`` envelope by the gRPC gateway (the proto's
  GetTrace comment), one envelope per streamed chunk; some 1.x releases
  returned the bare ``TracesData``. Both are accepted.
* ``GET /api/traces/{trace_id}`` — the UI's *internal* JSON (``model/json``):
  ``{"data": [{"traceID", "spans": [{"traceID", "spanID", "operationName",
  "references": [{"refType": "CHILD_OF", …}], "startTime" µs, "duration" µs,
  "tags": [{"key", "type", "value"}], "logs", "processID"}], "processes":
  {"p1": {"serviceName", "tags"}}}], "errors": …}``. OTLP fields live in tags
  (``span.kind``, ``otel.status_code``, ``otel.status_description``,
  ``w3c.tracestate``, ``otel.scope.name``), as Jaeger's OTLP translator writes them.

Both become the same :class:`conformance.telemetry.Span` values the embedded
OTLP receiver produces, so the checks never know which store they read. A
trace Jaeger does not (yet) have answers 404, which is "no spans yet": the
waits in :mod:`conformance.collect._traces` keep polling.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from conformance._exceptions import StackError
from conformance._mask import excerpt
from conformance.stack._otlp import OtlpDecodeError, spans_from_json
from conformance.telemetry import Span, SpanEvent

__all__ = ["JAEGER_APIS", "JaegerTraceStore", "spans_from_jaeger_v1", "spans_from_jaeger_v3"]

#: ``v3``: /api/v3 (OTLP JSON, stable); ``v1``: /api/traces (the UI's internal JSON).
JAEGER_APIS = ("v3", "v1")

# Tags Jaeger's OTLP→Jaeger translation derives from span fields rather than attributes.
_SPECIAL_TAGS = frozenset(
    {
        "span.kind",
        "otel.status_code",
        "otel.status_description",
        "w3c.tracestate",
        "otel.scope.name",
        "otel.scope.version",
        "otel.library.name",
        "otel.library.version",
        "error",
    }
)


class JaegerResponseError(StackError):
    """Jaeger answered something that is not a trace (an error body, not JSON)."""


def _json_documents(body: bytes) -> list[Any]:
    """Every JSON document in ``body`` (the gateway streams one per line)."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return documents
        document, index = decoder.raw_decode(text, index)
        documents.append(document)


def spans_from_jaeger_v3(body: bytes) -> list[Span]:
    """Spans of an ``/api/v3/traces…`` body: ``{"result": TracesData}`` chunks or a bare ``TracesData``."""
    try:
        documents = _json_documents(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise JaegerResponseError(f"Jaeger /api/v3 answered a body that is not JSON: {exc}") from None
    spans: list[Span] = []
    for document in documents:
        if not isinstance(document, dict):
            raise JaegerResponseError(
                f"Jaeger /api/v3 answered a JSON {type(document).__name__}, not an object"
            )
        if "error" in document:
            error = document["error"] if isinstance(document["error"], dict) else {}
            raise JaegerResponseError(
                f"Jaeger /api/v3 answered an error: {excerpt(str(error.get('message', document['error'])))}"
            )
        traces = document.get("result", document)
        if not isinstance(traces, dict):
            raise JaegerResponseError("Jaeger /api/v3 answered a result that is not an object")
        try:
            spans += spans_from_json(json.dumps(traces).encode())
        except OtlpDecodeError as exc:
            raise JaegerResponseError(
                f"Jaeger /api/v3 answered something that is not OTLP JSON: {exc}"
            ) from None
    return spans


def _value(tag: Mapping[str, Any]) -> Any:
    value = tag.get("value")
    kind = tag.get("type", "string")
    if kind == "int64" and isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if kind == "float64" and isinstance(value, str):
        return float(value)
    if kind == "bool" and isinstance(value, str):
        return value.lower() == "true"
    if kind == "binary" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def _tags(tags: Any) -> dict[str, Any]:
    return {str(t["key"]): _value(t) for t in tags or () if isinstance(t, Mapping) and "key" in t}


def _hex(value: Any, width: int) -> str:
    return str(value).lower().zfill(width)


def _v1_span(span: Mapping[str, Any], processes: Mapping[str, Any]) -> Span:
    tags = _tags(span.get("tags"))
    parent = next(
        (ref.get("spanID") for ref in span.get("references") or () if ref.get("refType") == "CHILD_OF"), None
    )
    if parent is None and span.get("parentSpanID") not in (None, "", "0"):
        parent = span["parentSpanID"]
    process = processes.get(str(span.get("processID")), {}) if isinstance(processes, Mapping) else {}
    resource = _tags(process.get("tags"))
    if process.get("serviceName"):
        resource["service.name"] = process["serviceName"]
    status = str(tags.get("otel.status_code", "")).upper()
    if not status:
        status = "ERROR" if tags.get("error") is True else "UNSET"
    start_us = int(span.get("startTime", 0))
    events = []
    for log in span.get("logs") or ():
        fields = _tags(log.get("fields"))
        events.append(
            SpanEvent(
                name=str(fields.pop("event", "")),
                time_unix_nano=int(log.get("timestamp", 0)) * 1000,
                attributes=fields,
            )
        )
    return Span(
        trace_id=_hex(span["traceID"], 32),
        span_id=_hex(span["spanID"], 16),
        parent_span_id=_hex(parent, 16) if parent else None,
        name=str(span.get("operationName", "")),
        kind=str(tags.get("span.kind", "unspecified")).upper(),
        start_time_unix_nano=start_us * 1000,
        end_time_unix_nano=(start_us + int(span.get("duration", 0))) * 1000,
        attributes={k: v for k, v in tags.items() if k not in _SPECIAL_TAGS},
        resource_attributes=resource,
        events=tuple(events),
        status_code=status,
        status_message=str(tags.get("otel.status_description", "")),
        trace_state=str(tags.get("w3c.tracestate", "")),
        scope_name=str(tags.get("otel.scope.name", tags.get("otel.library.name", ""))),
    )


def spans_from_jaeger_v1(body: bytes) -> list[Span]:
    """Spans of an ``/api/traces…`` body (``{"data": [trace, …], "errors": …}``)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise JaegerResponseError(f"Jaeger /api/traces answered a body that is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise JaegerResponseError("Jaeger /api/traces answered JSON that is not an object")
    errors = [e for e in document.get("errors") or () if isinstance(e, Mapping)]
    if errors and not document.get("data"):
        if all(e.get("code") == 404 for e in errors):
            return []
        raise JaegerResponseError(
            f"Jaeger /api/traces answered an error: {excerpt(str(errors[0].get('msg', '')))}"
        )
    spans: list[Span] = []
    try:
        for trace in document.get("data") or ():
            processes = trace.get("processes") or {}
            spans += [_v1_span(span, processes) for span in trace.get("spans") or ()]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise JaegerResponseError(f"Jaeger /api/traces answered an unexpected trace shape: {exc!r}") from None
    return spans


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


class JaegerTraceStore:
    """A ``TraceStore`` backed by a Jaeger query service.

    ``base_url`` is the query service (``http://127.0.0.1:16686``). Listing all
    spans (``spans()`` without a trace id) searches ``service_name``'s traces
    that started in the last ``lookback`` seconds, at most ``limit`` of them;
    with ``all_services`` (a Jaeger that holds only this run's traces, as in
    local mode) it searches every service Jaeger lists instead.

    ``raw`` asks for the spans as stored (``raw_traces``, API v3 only): Jaeger's
    query adjusters otherwise rewrite what the service sent (clock-skew
    correction moves timestamps, IP attributes are normalised, duplicate span
    ids are renamed), and a conformance check must judge the original.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client,
        api: str = "v3",
        service_name: str = "",
        all_services: bool = False,
        lookback: float = 3600.0,
        limit: int = 1000,
        raw: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if api not in JAEGER_APIS:
            raise ValueError(f"api must be one of {', '.join(JAEGER_APIS)}, got {api!r}")
        self.base_url = base_url.rstrip("/")
        self.api = api
        self._client = client
        self._service = service_name
        self._all_services = all_services
        self._lookback = lookback
        self._limit = limit
        self._raw = raw and api == "v3"
        self._clock = clock

    def describe(self) -> str:
        path = "/api/v3/traces" if self.api == "v3" else "/api/traces"
        return f"Jaeger query API at {self.base_url}{path}"

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response | None:
        url = f"{self.base_url}{path}"
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as exc:
            raise StackError(
                f"cannot reach Jaeger at {url}: {exc}", hint="is the Jaeger query service up?"
            ) from exc
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise JaegerResponseError(
                f"Jaeger answered {response.status_code} for GET {url}: {excerpt(response.text, 200)}"
            )
        return response

    def spans(self, trace_id: str | None = None) -> list[Span]:
        parse = spans_from_jaeger_v3 if self.api == "v3" else spans_from_jaeger_v1
        if trace_id is not None:
            wanted = trace_id.strip().lower()
            path = f"/api/v3/traces/{wanted}" if self.api == "v3" else f"/api/traces/{wanted}"
            response = self._get(path, {"raw_traces": "true"} if self._raw else None)
            return [] if response is None else [s for s in parse(response.content) if s.trace_id == wanted]
        if self._all_services:
            return [span for service in self.services() for span in self._search(service, parse)]
        if not self._service:
            raise StackError("listing spans from Jaeger needs a service name", hint="pass service_name=")
        return self._search(self._service, parse)

    def services(self) -> list[str]:
        """The service names Jaeger has spans of."""
        response = self._get("/api/v3/services" if self.api == "v3" else "/api/services")
        if response is None:
            return []
        try:
            document = response.json()
            names = document.get("services" if self.api == "v3" else "data") or []
        except (ValueError, AttributeError) as exc:
            raise JaegerResponseError(f"Jaeger answered an unexpected list of services: {exc}") from None
        return [str(name) for name in names]

    def _search(self, service: str, parse: Callable[[bytes], list[Span]]) -> list[Span]:
        now = self._clock()
        if self.api == "v3":
            params = {
                "query.service_name": service,
                "query.start_time_min": _rfc3339(now - self._lookback),
                "query.start_time_max": _rfc3339(now + 60),
                "query.num_traces": str(self._limit),
            }
            if self._raw:
                params["query.raw_traces"] = "true"
            response = self._get("/api/v3/traces", params)
        else:
            params = {
                "service": service,
                "start": str(int((now - self._lookback) * 1e6)),
                "end": str(int((now + 60) * 1e6)),
                "limit": str(self._limit),
            }
            response = self._get("/api/traces", params)
        return [] if response is None else parse(response.content)
