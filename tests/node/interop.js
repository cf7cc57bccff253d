// BullMQ's own Node client on receipt-ocr's queue, driven by the Rust
// interop test: `add` enqueues a job as a Node producer would, `inspect`
// prints what BullMQ's tools see (job counts, workers, one job).
// `remove` removes a job the way any BullMQ client can.
// `add-traced` does the same from inside a trace: the queue is given a
// telemetry adapter of the shape BullMQ's `telemetry` option takes (what
// bullmq-otel provides, reduced to a fixed trace id), so that BullMQ
// itself writes the producer's context into the job's `tm` option.
// Usage: node interop.js add QUEUE RECEIPT_ID BLOB_KEY
//        node interop.js add-traced QUEUE RECEIPT_ID BLOB_KEY TRACE_ID
//        node interop.js inspect QUEUE JOB_ID
//        node interop.js remove QUEUE JOB_ID
const crypto = require('crypto');
const { Queue } = require('bullmq');

// A tracer whose every span is in trace `traceId`; records the span ids
// it hands out so the caller can check which one the job carries.
function fixedTraceTelemetry(traceId, spanIds) {
  const span = () => {
    const spanId = crypto.randomBytes(8).toString('hex');
    spanIds.push(spanId);
    return {
      setSpanOnContext: () => ({ traceparent: `00-${traceId}-${spanId}-01` }),
      setAttribute() {}, setAttributes() {}, addEvent() {}, recordException() {}, end() {},
    };
  };
  return {
    tracer: { startSpan: span },
    contextManager: {
      with: (context, fn) => fn(),
      active: () => ({}),
      getMetadata: (context) => JSON.stringify({ traceparent: context.traceparent }),
      fromMetadata: (active) => active,
    },
  };
}

const connection = { url: process.env.REDIS_URL || 'redis://127.0.0.1:6379' };
const prefix = process.env.QUEUE_PREFIX || 'bull';

async function main() {
  const [command, queueName, ...rest] = process.argv.slice(2);
  const queue = new Queue(queueName, { connection, prefix });
  try {
    if (command === 'add') {
      const [receiptId, blobKey] = rest;
      const jobId = `ocr-${Date.now()}-node${Math.random().toString(36).slice(2, 12)}`;
      await queue.add('process-receipt', { receiptId, blobKey, contentType: 'image/png' },
        { jobId, attempts: 3, backoff: { type: 'exponential', delay: 100 } });
      console.log(JSON.stringify({ jobId }));
    } else if (command === 'add-traced') {
      const [receiptId, blobKey, traceId] = rest;
      const spanIds = [];
      const telemetry = fixedTraceTelemetry(traceId, spanIds);
      const traced = new Queue(queueName, { connection, prefix, telemetry });
      try {
        const jobId = `ocr-${Date.now()}-node${Math.random().toString(36).slice(2, 12)}`;
        await traced.add('process-receipt', { receiptId, blobKey, contentType: 'image/png' },
          { jobId, attempts: 3 });
        console.log(JSON.stringify({ jobId, producerSpanId: spanIds[0] }));
      } finally {
        await traced.close();
      }
    } else if (command === 'inspect') {
      const [jobId] = rest;
      const counts = await queue.getJobCounts();
      const workers = await queue.getWorkers();
      const job = await queue.getJob(jobId);
      console.log(JSON.stringify({
        counts,
        workers: workers.map((w) => w.rawname || w.name),
        state: job && (await job.getState()),
        returnvalue: job && job.returnvalue,
        progress: job && job.progress,
      }));
    } else if (command === 'remove') {
      const [jobId] = rest;
      const removed = await queue.remove(jobId);
      console.log(JSON.stringify({ removed }));
    } else {
      throw new Error(`unknown command ${command}`);
    }
  } finally {
    await queue.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
