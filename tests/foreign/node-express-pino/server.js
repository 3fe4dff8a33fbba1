'use strict';
const crypto = require('node:crypto');
const express = require('express');
const pino = require('pino');
const pinoHttp = require('pino-http');
const promClient = require('prom-client');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';

const logger = pino({
  level: process.env.LOG_LEVEL || 'info',
  redact: ['req.headers.authorization', 'req.headers.cookie'],
});

// --- metrics -----------------------------------------------------------------
promClient.collectDefaultMetrics();

const httpRequestDuration = new promClient.Histogram({
  name: 'http_request_duration_seconds',
  help: 'Duration of HTTP requests in seconds',
  labelNames: ['method', 'route', 'status_code'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

function metricsMiddleware(req, res, next) {
  const end = httpRequestDuration.startTimer();
  res.on('finish', () => {
    // req.route is only set once a route matched; never label with the raw URL.
    const route = req.route ? req.baseUrl + req.route.path : 'unmatched';
    end({ method: req.method, route, status_code: res.statusCode });
  });
  next();
}

// --- app -----------------------------------------------------------------------
const app = express();
app.disable('x-powered-by');

app.use(
  pinoHttp({
    logger,
    // Keep the caller's X-Request-ID, or make one, and hand it back.
    genReqId(req, res) {
      const id = req.headers['x-request-id'] || crypto.randomUUID();
      res.setHeader('X-Request-ID', id);
      return id;
    },
  }),
);
app.use(metricsMiddleware);
app.use(express.json());

const products = new Map([
  [1, { id: 1, name: 'Espresso cup', price: 8.5 }],
  [2, { id: 2, name: 'Milk jug', price: 14 }],
  [3, { id: 3, name: 'Tamper', price: 22 }],
]);
let nextId = 4;

app.get('/healthz', (req, res) => {
  res.json({ status: 'ok' });
});

app.get('/metrics', async (req, res) => {
  res.set('Content-Type', promClient.register.contentType);
  res.end(await promClient.register.metrics());
});

app.get('/products', (req, res) => {
  res.json({ items: [...products.values()] });
});

app.get('/products/:id', (req, res) => {
  const product = products.get(Number(req.params.id));
  if (!product) {
    req.log.warn({ productId: req.params.id }, 'product not found');
    return res.status(404).json({ error: 'not found' });
  }
  res.json(product);
});

app.post('/products', (req, res) => {
  const { name, price } = req.body || {};
  if (typeof name !== 'string' || typeof price !== 'number') {
    return res.status(400).json({ error: 'name (string) and price (number) are required' });
  }
  const product = { id: nextId++, name, price };
  products.set(product.id, product);
  req.log.info({ productId: product.id }, 'product created');
  res.status(201).json(product);
});

const server = app.listen(PORT, HOST, () => {
  logger.info({ port: PORT }, 'catalog-api listening');
});

process.on('SIGTERM', () => {
  logger.info('SIGTERM received, closing the server');
  server.close(() => process.exit(0));
});
