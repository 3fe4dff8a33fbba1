'use strict';
// OpenTelemetry set-up, preloaded before the app: `node -r ./tracing.js server.js`
// (https://opentelemetry.io/docs/languages/js/getting-started/nodejs/).
// The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
// the SDK reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { PinoInstrumentation } = require('@opentelemetry/instrumentation-pino');

const sdk = new NodeSDK({
  traceExporter: new OTLPTraceExporter(),
  instrumentations: [
    new HttpInstrumentation(),
    new ExpressInstrumentation(),
    // Adds trace_id, span_id and trace_flags to every pino record written inside a span.
    new PinoInstrumentation(),
  ],
});

sdk.start();

// Flush the last spans on shutdown.
process.on('SIGTERM', () => {
  sdk
    .shutdown()
    .catch((err) => console.error('Error shutting down the OpenTelemetry SDK', err))
    .finally(() => process.exit(0));
});
