'use strict';
// OpenTelemetry set-up, preloaded before the app: `node -r ./tracing.js server.js`.
// Traces and metrics both go over OTLP http/protobuf (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. the
// Cloud Run OpenTelemetry sidecar collector); OTEL_SERVICE_NAME names the service.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-proto');
const { PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { FastifyInstrumentation } = require('@opentelemetry/instrumentation-fastify');

const sdk = new NodeSDK({
  traceExporter: new OTLPTraceExporter(),
  metricReader: new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter(),
  }),
  instrumentations: [new HttpInstrumentation(), new FastifyInstrumentation()],
});

sdk.start();

process.on('SIGTERM', () => {
  sdk
    .shutdown()
    .catch((err) => console.error('Error shutting down the OpenTelemetry SDK', err))
    .finally(() => process.exit(0));
});
