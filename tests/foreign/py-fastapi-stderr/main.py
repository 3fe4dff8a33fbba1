"""bookshelf: a small FastAPI service.

Run with `uvicorn main:app --host 127.0.0.1 --port 8000`.

Telemetry is OpenTelemetry end to end: the FastAPI instrumentation makes a
SERVER span per request and the http.server.* metrics; both are pushed over
OTLP/HTTP (protobuf) to OTEL_EXPORTER_OTLP_ENDPOINT. There is no /metrics:
the collector turns OTLP metrics into whatever the backend wants.
Logs are plain text via the standard library (stderr); uvicorn adds its access log.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic import BaseModel, Field

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
logger = logging.getLogger("bookshelf")

# --- OpenTelemetry: traces and metrics over OTLP/HTTP ------------------------------
# The exporters read OTEL_EXPORTER_OTLP_ENDPOINT (and the per-signal variants);
# Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
resource = Resource.create()
tracer_provider = TracerProvider(resource=resource)
tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(tracer_provider)

meter_provider = MeterProvider(
    resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
)
metrics.set_meter_provider(meter_provider)
meter = metrics.get_meter("bookshelf")
books_created = meter.create_counter("bookshelf.books.created", unit="{book}", description="Books added")


@asynccontextmanager
async def lifespan(app: FastAPI):
    logger.info("bookshelf starting")
    yield
    logger.info("bookshelf shutting down, flushing telemetry")
    tracer_provider.shutdown()
    meter_provider.shutdown()


app = FastAPI(title="bookshelf", lifespan=lifespan)


@app.middleware("http")
async def log_requests(request: Request, call_next):
    start = time.perf_counter()
    response = await call_next(request)
    elapsed_ms = (time.perf_counter() - start) * 1000
    logger.info(
        "request completed method=%s path=%s status=%d duration_ms=%.2f",
        request.method,
        request.url.path,
        response.status_code,
        elapsed_ms,
    )
    return response


# --- API ---------------------------------------------------------------------------


class BookIn(BaseModel):
    title: str = Field(min_length=1)
    author: str = Field(min_length=1)
    year: int | None = None


class Book(BookIn):
    id: int


BOOKS: dict[int, Book] = {
    1: Book(id=1, title="The Mythical Man-Month", author="Frederick P. Brooks Jr.", year=1975),
    2: Book(id=2, title="Site Reliability Engineering", author="Betsy Beyer et al.", year=2016),
    3: Book(id=3, title="Designing Data-Intensive Applications", author="Martin Kleppmann", year=2017),
}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/books")
async def list_books(limit: int = 20) -> list[Book]:
    return sorted(BOOKS.values(), key=lambda b: b.id)[: max(limit, 0)]


@app.get("/books/{book_id}")
async def get_book(book_id: int) -> Book:
    book = BOOKS.get(book_id)
    if book is None:
        raise HTTPException(status_code=404, detail="book not found")
    return book


@app.post("/books", status_code=201)
async def create_book(book: BookIn) -> Book:
    book_id = max(BOOKS, default=0) + 1
    BOOKS[book_id] = Book(id=book_id, **book.model_dump())
    books_created.add(1)
    logger.info("created book %d", book_id)
    return BOOKS[book_id]


# Health checks are not traced (kube probes would drown the traces).
FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz")
