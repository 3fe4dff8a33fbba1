'use strict';
const { trace, context, isSpanContextValid, metrics } = require('@opentelemetry/api');
const pino = require('pino');
const Fastify = require('fastify');

const PORT = Number(process.env.PORT || 8080);
const HOST = process.env.HOST || '0.0.0.0';
const PROJECT_ID = process.env.GOOGLE_CLOUD_PROJECT || 'local-dev';

// Cloud Logging reads severity, message and the trace fields from each JSON line on stdout:
// https://cloud.google.com/logging/docs/structured-logging
// https://cloud.google.com/logging/docs/reference/v2/rest/v2/LogEntry#LogSeverity
const PinoLevelToSeverityLookup = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

const fastify = Fastify({
  requestIdHeader: 'x-request-id',
  logger: {
    level: process.env.LOG_LEVEL || 'info',
    messageKey: 'message',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level(label, number) {
        return {
          severity: PinoLevelToSeverityLookup[label] || PinoLevelToSeverityLookup.info,
          level: number,
        };
      },
    },
    // Correlate log entries with Cloud Trace: the active OpenTelemetry span, if any.
    mixin() {
      const spanContext = trace.getSpanContext(context.active());
      if (!spanContext || !isSpanContextValid(spanContext)) {
        return {};
      }
      return {
        'logging.googleapis.com/trace': `projects/${PROJECT_ID}/traces/${spanContext.traceId}`,
        'logging.googleapis.com/spanId': spanContext.spanId,
        'logging.googleapis.com/trace_sampled': (spanContext.traceFlags & 1) === 1,
      };
    },
  },
});

const meter = metrics.getMeter('bookshop-api');
const ordersPlaced = meter.createCounter('bookshop.orders.placed', {
  description: 'Orders accepted',
});

const books = new Map([
  [1, { id: 1, title: 'The Left Hand of Darkness', author: 'Ursula K. Le Guin', stock: 3 }],
  [2, { id: 2, title: 'Kindred', author: 'Octavia E. Butler', stock: 5 }],
  [3, { id: 3, title: 'Piranesi', author: 'Susanna Clarke', stock: 0 }],
]);
let nextOrderId = 1000;

async function buildRoutes() {
  // Rate limits are declared per route (config.rateLimit); the plugin must be registered first.
  await fastify.register(require('@fastify/rate-limit'), { global: false });

  fastify.get('/healthz', async () => ({ status: 'ok' }));

  fastify.get('/books', async () => ({ books: [...books.values()] }));

  fastify.get('/books/:id', async (request, reply) => {
    const book = books.get(Number(request.params.id));
    if (!book) {
      request.log.warn({ bookId: request.params.id }, 'book not found');
      return reply.code(404).send({ error: 'book not found' });
    }
    return book;
  });

  // Search hits the (slow, metered) catalogue backend, so it is rate limited per client IP.
  fastify.get(
    '/search',
    {
      config: {
        rateLimit: {
          max: Number(process.env.SEARCH_RATE_LIMIT_MAX || 10),
          timeWindow: process.env.SEARCH_RATE_LIMIT_WINDOW || '1 minute',
        },
      },
    },
    async (request) => {
      const q = String(request.query.q || '').toLowerCase();
      const results = [...books.values()].filter(
        (b) => b.title.toLowerCase().includes(q) || b.author.toLowerCase().includes(q),
      );
      return { results };
    },
  );

  fastify.post(
    '/orders',
    {
      schema: {
        body: {
          type: 'object',
          required: ['bookId', 'quantity'],
          properties: {
            bookId: { type: 'integer' },
            quantity: { type: 'integer', minimum: 1 },
          },
        },
      },
    },
    async (request, reply) => {
      const { bookId, quantity } = request.body;
      const book = books.get(bookId);
      if (!book) {
        return reply.code(404).send({ error: 'book not found' });
      }
      const order = { orderId: nextOrderId++, bookId, quantity };
      ordersPlaced.add(1);
      request.log.info({ orderId: order.orderId, bookId }, 'order placed');
      return reply.code(201).send(order);
    },
  );
}

const start = async () => {
  try {
    await buildRoutes();
    await fastify.listen({ port: PORT, host: HOST });
  } catch (err) {
    fastify.log.error(err);
    process.exit(1);
  }
};

process.on('SIGTERM', () => {
  fastify.log.info('SIGTERM received, shutting down');
  fastify.close();
});

start();
