"""catalog: a small Flask inventory API.

Runs under gunicorn (`gunicorn --bind 127.0.0.1:8000 app:app`). Logs are
structlog JSON on stdout, one `request_finished` event per request; gunicorn's
own log stays on stderr. Prometheus metrics are mounted at /metrics.

Tracing: the edge proxy starts the traces. We continue its W3C traceparent and
put trace_id/span_id on every log line so a request can be found by its trace
id. No span exporter is configured yet (the collector is not deployed for this
service), so spans only live in-process.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
import uuid

import structlog
from flask import Flask, abort, g, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Histogram, make_wsgi_app
from werkzeug.middleware.dispatcher import DispatcherMiddleware

REQUEST_ID_HEADER = "X-Request-ID"
LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5 per minute")

# --- logging -----------------------------------------------------------------

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ],
    wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    logger_factory=structlog.PrintLoggerFactory(),
    cache_logger_on_first_use=True,
)
log = structlog.get_logger()

# --- tracing -----------------------------------------------------------------

# Resource.create() picks up OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
# TODO(platform): add a BatchSpanProcessor(OTLPSpanExporter()) once the collector is up.
trace.set_tracer_provider(TracerProvider(resource=Resource.create()))
tracer = trace.get_tracer("catalog")
propagator = TraceContextTextMapPropagator()

# --- metrics -----------------------------------------------------------------

REQUESTS = Counter(
    "http_requests_total", "Total HTTP requests.", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "http_request_duration_seconds", "HTTP request latency in seconds.", ["method", "endpoint"]
)

# --- app -----------------------------------------------------------------------

app = Flask(__name__)


def _endpoint() -> str:
    # The URL rule ("/items/<int:item_id>"), never the raw path: keeps label cardinality bounded.
    return request.url_rule.rule if request.url_rule is not None else "<unmatched>"


# The request hooks are registered before the limiter, so throttled requests get
# a request id, a span and their request_finished line like any other.
@app.before_request
def start_request() -> None:
    structlog.contextvars.clear_contextvars()
    g.started = time.perf_counter()
    g.request_id = request.headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())

    parent = propagator.extract(carrier=request.headers)
    span = tracer.start_span(f"{request.method} {_endpoint()}", context=parent, kind=SpanKind.SERVER)
    g.span = span
    g.otel_token = otel_context.attach(trace.set_span_in_context(span, parent))
    span_context = span.get_span_context()
    structlog.contextvars.bind_contextvars(
        request_id=g.request_id,
        trace_id=format(span_context.trace_id, "032x"),
        span_id=format(span_context.span_id, "016x"),
    )


@app.after_request
def finish_request(response):
    duration = time.perf_counter() - g.started
    endpoint = _endpoint()
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    LATENCY.labels(request.method, endpoint).observe(duration)
    response.headers[REQUEST_ID_HEADER] = g.request_id
    log.info(
        "request_finished",
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_ms=round(duration * 1000, 2),
    )
    return response


@app.teardown_request
def end_span(exc: BaseException | None) -> None:
    span = g.pop("span", None)
    if span is None:
        return
    if exc is not None:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    otel_context.detach(g.pop("otel_token"))


limiter = Limiter(get_remote_address, app=app, storage_uri="memory://")

# --- data --------------------------------------------------------------------

ITEMS: dict[int, dict] = {
    1: {"id": 1, "name": "espresso cup", "price": 4.5},
    2: {"id": 2, "name": "pour-over kettle", "price": 39.0},
    3: {"id": 3, "name": "burr grinder", "price": 129.0},
}
USERS = {"demo": os.environ.get("DEMO_PASSWORD", "demo-password")}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/items")
def list_items():
    limit = request.args.get("limit", default=50, type=int)
    items = sorted(ITEMS.values(), key=lambda i: i["id"])[: max(limit, 0)]
    return {"items": items, "count": len(items)}


@app.get("/items/<int:item_id>")
def get_item(item_id: int):
    item = ITEMS.get(item_id)
    if item is None:
        abort(404)
    return item


@app.post("/items")
def create_item():
    body = request.get_json(silent=True) or {}
    name, price = body.get("name"), body.get("price")
    if not isinstance(name, str) or not name or not isinstance(price, (int, float)):
        return jsonify(error="name (string) and price (number) are required"), 400
    item_id = max(ITEMS, default=0) + 1
    ITEMS[item_id] = {"id": item_id, "name": name, "price": price}
    log.info("item_created", item_id=item_id)
    return ITEMS[item_id], 201


@app.post("/login")
@limiter.limit(LOGIN_RATE_LIMIT)
def login():
    body = request.get_json(silent=True) or {}
    username, password = str(body.get("username", "")), str(body.get("password", ""))
    expected = USERS.get(username)
    if expected is None or not hmac.compare_digest(expected, password):
        log.warning("login_failed", username=username)
        return jsonify(error="invalid credentials"), 401
    log.info("login_succeeded", username=username)
    return {"token": secrets.token_urlsafe(32), "token_type": "bearer"}


app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/metrics": make_wsgi_app()})

log.info("catalog_started", rate_limit_login=LOGIN_RATE_LIMIT)
