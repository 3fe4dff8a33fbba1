"""pantry: a small Flask inventory API.

Runs under gunicorn (`gunicorn --bind 127.0.0.1:8000 app:app`).

Telemetry is OpenTelemetry only, pushed over OTLP/HTTP (protobuf) to
OTEL_EXPORTER_OTLP_ENDPOINT; the collector decides where it ends up.

* Traces: opentelemetry-instrumentation-flask makes a SERVER span per request.
* Logs: the standard library's `logging`, bridged by the SDK's LoggingHandler.
  There is no console handler: the records go out over OTLP only, each with the
  trace and span id of the request it was written in, so nobody greps pods.
* No metrics yet (no MeterProvider, no /metrics).

gunicorn's own log (start-up, worker boot) stays on its stderr.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, abort, g, jsonify, request
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# --- OpenTelemetry -------------------------------------------------------------------
# The exporters read OTEL_EXPORTER_OTLP_ENDPOINT; Resource.create() reads OTEL_SERVICE_NAME.
resource = Resource.create()

tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)

logger_provider = LoggerProvider(resource=resource)
logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
set_logger_provider(logger_provider)

# Every logger of the app goes through the OpenTelemetry bridge, and nowhere else.
# (Not logging.basicConfig(handlers=[...]): it gives the handler a formatter, and the
# bridge then exports the formatted "INFO:pantry:..." line as the body.)
logging.getLogger().addHandler(LoggingHandler(level=logging.NOTSET, logger_provider=logger_provider))
logging.getLogger().setLevel(logging.INFO)
logger = logging.getLogger("pantry")

# --- the app -------------------------------------------------------------------------
app = Flask(__name__)
FlaskInstrumentor().instrument_app(app)

ITEMS: dict[int, dict] = {
    1: {"id": 1, "name": "flour", "quantity": 12},
    2: {"id": 2, "name": "rice", "quantity": 30},
    3: {"id": 3, "name": "lentils", "quantity": 8},
}


@app.before_request
def start_timer():
    g.started = time.perf_counter()


@app.after_request
def log_request(response):
    # One record per request, in OpenTelemetry's attribute names so the backend indexes them.
    elapsed_ms = (time.perf_counter() - g.started) * 1000
    logger.info(
        "request completed",
        extra={
            "http.request.method": request.method,
            "url.path": request.path,
            "http.response.status_code": response.status_code,
            "duration_ms": round(elapsed_ms, 3),
        },
    )
    return response


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/items")
def list_items():
    limit = request.args.get("limit", default=20, type=int)
    return jsonify(sorted(ITEMS.values(), key=lambda item: item["id"])[: max(limit, 0)])


@app.get("/items/<int:item_id>")
def get_item(item_id: int):
    item = ITEMS.get(item_id)
    if item is None:
        abort(404)
    return item


@app.post("/items")
def create_item():
    data = request.get_json(silent=True) or {}
    name, quantity = data.get("name"), data.get("quantity")
    if not isinstance(name, str) or not name or not isinstance(quantity, int):
        abort(400)
    item_id = max(ITEMS, default=0) + 1
    ITEMS[item_id] = {"id": item_id, "name": name, "quantity": quantity}
    logger.info("item created", extra={"item.id": item_id})
    return ITEMS[item_id], 201


logger.info("pantry ready")
