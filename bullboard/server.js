// Bull Board on receipt-ocr's queues: the receipts queue and the webhook
// deliveries queue, read-only unless BULLBOARD_READ_ONLY=false.
//
// REDIS_URL           redis://127.0.0.1:6379
// QUEUE_PREFIX        bull
// QUEUE_NAMES         ocr-processing,ocr-processing-webhooks (comma-separated)
// BULLBOARD_PORT      3001 (Grafana has 3000; 0 picks a free port; the port is printed)
// BULLBOARD_HOST      0.0.0.0
// BULLBOARD_READ_ONLY true
const express = require('express');
const { Queue } = require('bullmq');
const { createBullBoard } = require('@bull-board/api');
const { BullMQAdapter } = require('@bull-board/api/bullMQAdapter');
const { ExpressAdapter } = require('@bull-board/express');

const connection = { url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' };
const prefix = process.env.QUEUE_PREFIX || 'bull';
const names = (process.env.QUEUE_NAMES || 'ocr-processing,ocr-processing-webhooks')
  .split(',')
  .map((name) => name.trim())
  .filter(Boolean);
const readOnlyMode = (process.env.BULLBOARD_READ_ONLY || 'true') !== 'false';
const port = Number(process.env.BULLBOARD_PORT ?? 3001);
const host = process.env.BULLBOARD_HOST || '0.0.0.0';

const queues = names.map((name) => new Queue(name, { connection, prefix }));
const board = new ExpressAdapter();
board.setBasePath('/');
createBullBoard({
  queues: queues.map((queue) => new BullMQAdapter(queue, { readOnlyMode })),
  serverAdapter: board,
});

const app = express();
app.get('/healthz', (_req, res) => res.json({ status: 'ok' }));
app.use('/', board.getRouter());
const server = app.listen(port, host, () => {
  const { port: bound } = server.address();
  console.log(JSON.stringify({ bullBoard: `http://${host}:${bound}/`, queues: names, readOnlyMode }));
});

async function stop() {
  server.close();
  await Promise.all(queues.map((queue) => queue.close()));
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
