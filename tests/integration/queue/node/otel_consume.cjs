// OBS1: run <count> jobs with a Node BullMQ 5 worker traced by bullmq-otel; print the spans.
// Usage: node otel_consume.cjs <redis-url> <prefix> <queue> <count>
const { setUpTracing, spansOf } = require('./otel_common.cjs');
const exporter = setUpTracing();
const { Worker } = require('bullmq');
const { BullMQOtel } = require('bullmq-otel');
const IORedis = require('ioredis');

const [url, prefix, name, count] = process.argv.slice(2);

(async () => {
  const connection = new IORedis(url, { maxRetriesPerRequest: null });
  const done = [];
  let finish;
  const finished = new Promise((resolve) => {
    finish = resolve;
  });
  const worker = new Worker(name, async (job) => ({ by: 'node', seen: job.data }), {
    connection,
    prefix,
    telemetry: new BullMQOtel('node-worker'),
  });
  worker.on('completed', (job) => {
    done.push(job.id);
    if (done.length >= Number(count)) finish();
  });
  const timer = setTimeout(() => finish(), 20000);
  await finished;
  clearTimeout(timer);
  await worker.close();
  await connection.quit();
  console.log(JSON.stringify({ completed: done, spans: spansOf(exporter) }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
